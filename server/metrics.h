// Prometheus metrics of the server (prometheus-cpp), in base units, with
// low-cardinality labels only (model, version, gRPC code name).
//
// Metrics owns the registry; ModelMetrics are per (model, version) handles
// into it that stay valid for the life of Metrics. All methods are
// thread-safe (prometheus-cpp's metrics are atomic; lookups lock).
#ifndef CNNSERVE_SERVER_METRICS_H_
#define CNNSERVE_SERVER_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace cnnserve::server {

struct ModelMetrics {
  prometheus::Family<prometheus::Counter>* requests = nullptr;  // by code
  std::string model, version;
  prometheus::Histogram* request_duration = nullptr;
  prometheus::Histogram* queue_duration = nullptr;
  prometheus::Histogram* preprocess_duration = nullptr;
  prometheus::Histogram* compute_duration = nullptr;
  prometheus::Histogram* batch_size = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Gauge* inflight = nullptr;
  prometheus::Gauge* ready = nullptr;
  prometheus::Gauge* load_duration = nullptr;
  // With a latency SLO: requests shed for it, and the scheduler's cost model
  // t(b) = fixed + b * per_item and batch size target.
  prometheus::Counter* slo_shed = nullptr;
  prometheus::Gauge* batch_cost_fixed = nullptr;
  prometheus::Gauge* batch_cost_per_item = nullptr;
  prometheus::Gauge* target_batch_size = nullptr;
  prometheus::Gauge* admission_margin = nullptr;

  // One request answered with `code` (the counter's code label).
  void CountRequest(absl::StatusCode code) const;
};

class Metrics {
 public:
  Metrics(const std::string& version, const std::string& onednn, const std::string& grpc);
  ~Metrics();

  // The handles for a model version, created on first use. `max_batch_size`
  // sets the batch-size histogram's buckets (1 to max) on creation.
  ModelMetrics* ForModel(const std::string& model, const std::string& version,
                         int64_t max_batch_size);

  // The Prometheus text exposition of every metric, process_* included.
  std::string Serialize() const;

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ModelMetrics>> models_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_METRICS_H_
