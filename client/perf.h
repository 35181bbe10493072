// cnnserve-client perf: a closed-loop load tester over KServe v2 ModelInfer.
// For each concurrency level it keeps that many requests in flight with
// gRPC's async callback API (no thread per request), for a warm-up period
// and then a measured one, and reports throughput (requests and images per
// second), latency percentiles and errors by gRPC code.
//
// Inputs: random FP32 tensors of the model's shape, or the JPEG/PNG files of
// a folder sent as BYTES (--images). Not thread-safe; one Perf at a time.
#ifndef CNNSERVE_CLIENT_PERF_H_
#define CNNSERVE_CLIENT_PERF_H_

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

namespace cnnserve::client {

struct PerfOptions {
  std::string model;
  std::string version;
  std::vector<int> concurrency = {1};
  int batch = 1;               // items per request
  double duration_s = 5;       // measured, per step
  double warmup_s = 1;         // not measured, per step
  std::string images;          // a folder of JPEG/PNG files; "" for random FP32
  int deadline_ms = 0;         // per request; 0: none
  std::string json_path;       // also write the steps as JSON lines here
  std::string csv_path;        // and/or as CSV
};

struct PerfStep {
  int concurrency = 0;
  int64_t requests = 0;  // answered OK in the measured period
  std::map<std::string, int64_t> errors;  // by gRPC code name
  double seconds = 0;
  double requests_per_s = 0;
  double images_per_s = 0;
  double p50_ms = 0, p90_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

// Parses "1,2,4" or a range "1:64:x2" (from:to:xfactor) or "1:8:+1".
absl::StatusOr<std::vector<int>> ParseConcurrency(const std::string& text);

absl::StatusOr<std::vector<PerfStep>> Perf(const std::shared_ptr<grpc::Channel>& channel,
                                           const PerfOptions& options, std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_PERF_H_
