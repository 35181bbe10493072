// cnnserve-client perf: a load tester over KServe v2 ModelInfer, in the
// manner of Triton's perf_analyzer.
//
// Closed loop (--concurrency): that many requests always in flight. Open
// loop (--rate): requests sent at scheduled times, constant or Poisson,
// however slowly the server answers; latency is measured from the
// scheduled send time, so queueing is not hidden (no coordinated omission).
// Requests go through gRPC's async callback API: no thread per request.
//
// Each step runs a warm-up, then measurement windows (--duration_s each,
// or --requests answers each) until two consecutive windows agree within
// --stability on throughput and mean latency, up to --max_windows; the
// last two windows are reported. Optional: /metrics deltas (--metrics_url)
// for the server's view, JSON/CSV files, an SVG latency-throughput plot,
// and the highest throughput whose p99 meets --slo_p99_ms.
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
  std::vector<int> concurrency = {1};  // closed loop, when `rates` is empty
  std::vector<double> rates;           // open loop: requests/s per step
  bool poisson = false;                // open loop arrivals
  int batch = 1;                       // items per request
  double duration_s = 5;               // per measurement window
  int64_t requests = 0;                // > 0: a window is this many answers instead
  double warmup_s = 1;                 // per step, not measured
  double stability = 0.10;             // windows agree within this fraction
  int max_windows = 4;
  std::string images;                  // folder of JPEG/PNG sent as BYTES; "" random FP32
  int deadline_ms = 0;                 // per request; 0: none
  std::string metrics_url;             // e.g. http://localhost:8000/metrics
  std::string json_path, csv_path, plot_path;
  double slo_p99_ms = 0;               // > 0: report the knee and answers within it
  bool progress = false;               // live one-line display (a terminal)
};

struct PerfStep {
  std::string label;  // "c=8" or "r=100"
  int concurrency = 0;
  double rate = 0;
  int windows = 0;
  bool stable = false;
  // The reported windows.
  int64_t requests = 0;  // answered OK
  std::map<std::string, int64_t> errors;  // by gRPC code name
  double seconds = 0;
  double requests_per_s = 0, images_per_s = 0;
  double p50_ms = 0, p90_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;  // answered OK
  double error_p50_ms = 0, error_p90_ms = 0, error_p99_ms = 0;  // latency of the refused requests
  // With --slo_p99_ms: requests answered OK within it, and that as a share
  // of all requests the windows saw (errors count as misses).
  int64_t within_slo = 0;
  double within_slo_per_s = 0, within_slo_fraction = 0;
  // The whole step, warm-up and tail included.
  int64_t sent = 0, answered = 0;
  double client_cpu_us_per_request = 0;
  // From /metrics deltas over the whole step, when --metrics_url is given.
  bool has_server = false;
  int64_t server_requests = 0, server_batches = 0;
  double server_queue_ms = 0, server_compute_ms = 0, server_batch_size = 0;
};

// Parses "1,2,4" or a range "1:64:x2" (from:to:xfactor) or "1:8:+1".
absl::StatusOr<std::vector<int>> ParseConcurrency(const std::string& text);
// Parses "10,20.5,40": positive requests/s.
absl::StatusOr<std::vector<double>> ParseRates(const std::string& text);

absl::StatusOr<std::vector<PerfStep>> Perf(const std::shared_ptr<grpc::Channel>& channel,
                                           const PerfOptions& options, std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_PERF_H_
