// What the load tester reads from a cnnserve /metrics page for one model:
// requests answered, and the sums and counts of its queue, compute and
// batch-size histograms, so that two scrapes give the server-side view of
// a step. Pure functions; thread-safe.
#ifndef CNNSERVE_CLIENT_SERVER_METRICS_H_
#define CNNSERVE_CLIENT_SERVER_METRICS_H_

#include <string>

namespace cnnserve::client {

struct ServerCounters {
  double requests = 0;  // cnnserve_requests_total, all codes
  double queue_seconds = 0, queue_count = 0;
  double compute_seconds = 0, batches = 0;
  double batch_items = 0;
};

// Sums the model's series (every version) in a Prometheus text page.
ServerCounters ParseServerCounters(const std::string& text, const std::string& model);

struct ServerDelta {
  int64_t requests = 0;
  int64_t batches = 0;
  double mean_queue_ms = 0;
  double mean_compute_ms = 0;   // per batch
  double mean_batch_size = 0;
};
ServerDelta Delta(const ServerCounters& before, const ServerCounters& after);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_SERVER_METRICS_H_
