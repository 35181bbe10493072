// Autotune: picks a model's instance count and threads per instance on this
// machine, for `instance_group { count: 0 }`.
//
// It measures every split of the cores into instances (1 x N threads,
// 2 x N/2, ...) at a few batch sizes, all instances running batches at once
// as they would under load, within a time budget shared evenly between the
// trials. With a latency SLO it picks the trial with the most items per
// second whose batch time leaves room for a request to wait one batch and
// then run in the next (2 x batch time within the SLO's planning share);
// without one, the lowest batch-1 latency (within 5%, the higher
// throughput). The measuring is a callback, so tests give it known costs.
//
// The choice is cached in a small text file next to the model, keyed by
// everything that could change it (CPU model, cores, engine version, the
// model's files, max batch, SLO), so a restart on the same machine is
// instant. Pure functions; thread-safe.
#ifndef CNNSERVE_SERVER_AUTOTUNE_H_
#define CNNSERVE_SERVER_AUTOTUNE_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cnnserve::server {

struct TuneTrial {
  int instances = 1;
  int threads = 1;  // per instance
  int64_t batch = 1;
  double items_per_second = 0;  // all instances together
  absl::Duration batch_latency;  // median time of one batch
};

struct TuneChoice {
  int instances = 1;
  int threads = 1;
  std::string reason;
  bool cached = false;
  std::vector<TuneTrial> trials;  // empty when cached
};

struct TuneOptions {
  int cores = 1;
  int64_t max_batch_size = 32;
  absl::Duration slo;  // zero: none
  absl::Duration budget = absl::Seconds(10);
};

// Runs `instances` contexts of `threads` threads each on batches of `batch`,
// all at once, for about `budget`; fills items_per_second and batch_latency.
using TuneMeasure = std::function<absl::StatusOr<TuneTrial>(int instances, int threads,
                                                            int64_t batch, absl::Duration budget)>;

// The (instances, threads) splits tried for `cores` cores.
std::vector<std::pair<int, int>> TuneCandidates(int cores);
// The batch sizes tried: 1, 8 and max_batch_size (those that exist).
std::vector<int64_t> TuneBatches(int64_t max_batch_size);

absl::StatusOr<TuneChoice> Autotune(const TuneOptions& options, const TuneMeasure& measure);

// What a cached choice must match: CPU model, cores, engine version and the
// model's identity (fingerprint, max batch, SLO).
std::string TuneCacheKey(int cores, const std::string& model_fingerprint, int64_t max_batch_size,
                         absl::Duration slo);
// The choice stored under `key` in `path`, if any (a missing or unreadable
// file is no choice).
std::optional<TuneChoice> ReadTuneCache(const std::string& path, const std::string& key);
// Stores `choice` under `key`, replacing that key's line. An error (a
// read-only repository) costs only a re-tune at the next start.
absl::Status WriteTuneCache(const std::string& path, const std::string& key,
                            const TuneChoice& choice);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_AUTOTUNE_H_
