#include "server/autotune.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "server/slo_planner.h"

namespace cnnserve::server {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown-cpu";
}

std::string Describe(const TuneTrial& t) {
  return absl::StrFormat("%dx%d threads at batch %d: %.1f items/s, %.1f ms per batch", t.instances,
                         t.threads, t.batch, t.items_per_second,
                         absl::ToDoubleMilliseconds(t.batch_latency));
}

}  // namespace

std::vector<std::pair<int, int>> TuneCandidates(int cores) {
  cores = std::max(1, cores);
  std::vector<std::pair<int, int>> out;
  for (int n = 1; n <= std::min(cores, 8); ++n) {
    if (cores % n == 0 || n == cores) out.emplace_back(n, std::max(1, cores / n));
  }
  return out;
}

std::vector<int64_t> TuneBatches(int64_t max_batch_size) {
  std::vector<int64_t> out = {1};
  if (max_batch_size > 8) out.push_back(8);
  if (max_batch_size > 1) out.push_back(max_batch_size);
  return out;
}

absl::StatusOr<TuneChoice> Autotune(const TuneOptions& options, const TuneMeasure& measure) {
  const auto candidates = TuneCandidates(options.cores);
  const auto batches = TuneBatches(options.max_batch_size);
  const absl::Duration each = options.budget / static_cast<double>(candidates.size() * batches.size());
  TuneChoice choice;
  for (const auto& [instances, threads] : candidates) {
    for (int64_t batch : batches) {
      absl::StatusOr<TuneTrial> t = measure(instances, threads, batch, each);
      if (!t.ok()) return t.status();
      t->instances = instances;
      t->threads = threads;
      t->batch = batch;
      choice.trials.push_back(*t);
    }
  }
  const TuneTrial* best = nullptr;
  if (options.slo > absl::ZeroDuration()) {
    // A request may wait for one batch and then run in the next.
    const absl::Duration room = options.slo * SloPlanner::kShareForQueueAndCompute / 2;
    for (const TuneTrial& t : choice.trials) {
      if (t.batch_latency <= room && (best == nullptr || t.items_per_second > best->items_per_second)) {
        best = &t;
      }
    }
    if (best != nullptr) {
      choice.reason = absl::StrCat("most items/s with 2 batch times within the SLO: ", Describe(*best));
    }
  }
  if (best == nullptr) {
    for (const TuneTrial& t : choice.trials) {
      if (t.batch != 1) continue;
      if (best == nullptr || t.batch_latency < best->batch_latency * 0.95 ||
          (t.batch_latency <= best->batch_latency * 1.05 && t.items_per_second > best->items_per_second)) {
        best = &t;
      }
    }
    choice.reason = absl::StrCat(options.slo > absl::ZeroDuration()
                                     ? "no split keeps 2 batch times within the SLO; lowest latency: "
                                     : "lowest batch-1 latency: ",
                                 Describe(*best));
  }
  choice.instances = best->instances;
  choice.threads = best->threads;
  return choice;
}

std::string TuneCacheKey(int cores, const std::string& model_fingerprint, int64_t max_batch_size,
                         absl::Duration slo) {
  std::string key = absl::StrCat(CpuModel(), "|cores=", cores, "|cnnserve=", CNNSERVE_VERSION,
                                 "|model=", model_fingerprint, "|max_batch=", max_batch_size,
                                 "|slo_us=", absl::ToInt64Microseconds(slo));
  std::replace(key.begin(), key.end(), '\t', ' ');
  std::replace(key.begin(), key.end(), '\n', ' ');
  return key;
}

std::optional<TuneChoice> ReadTuneCache(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() != 4 || f[0] != key) continue;
    TuneChoice c;
    c.cached = true;
    if (!absl::SimpleAtoi(f[1], &c.instances) || !absl::SimpleAtoi(f[2], &c.threads) ||
        c.instances < 1 || c.threads < 1) {
      return std::nullopt;
    }
    c.reason = absl::StrCat("cached: ", f[3]);
    return c;
  }
  return std::nullopt;
}

absl::Status WriteTuneCache(const std::string& path, const std::string& key,
                            const TuneChoice& choice) {
  std::string kept;
  {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(key + "\t", 0) != 0) kept += line + "\n";
    }
  }
  std::string reason = choice.reason;
  std::replace(reason.begin(), reason.end(), '\t', ' ');
  std::ofstream out(path, std::ios::trunc);
  out << kept << key << "\t" << choice.instances << "\t" << choice.threads << "\t" << reason << "\n";
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write the autotune cache ", path));
  return absl::OkStatus();
}

}  // namespace cnnserve::server
