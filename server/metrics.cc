#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_split.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace cnnserve::server {
namespace {

// 0.5 ms to 10 s, roughly x2 apart.
prometheus::Histogram::BucketBoundaries DurationBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

prometheus::Histogram::BucketBoundaries BatchBuckets(int64_t max_batch_size) {
  prometheus::Histogram::BucketBoundaries b;
  for (int64_t v = 1; v < max_batch_size; v *= 2) b.push_back(v);
  b.push_back(max_batch_size);
  return b;
}

prometheus::MetricFamily Single(const std::string& name, const std::string& help,
                                prometheus::MetricType type, double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return {name, help, type, {m}};
}

// The standard process_* metrics, read from /proc at scrape time.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the ")" that closes the command name: state is field 3.
    const size_t close = line.rfind(')');
    std::vector<std::string> f = absl::StrSplit(line.substr(close + 2), ' ');
    if (f.size() > 21) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / tick;  // utime + stime
      out.push_back(Single("process_cpu_seconds_total", "User and system CPU time spent in seconds.",
                           prometheus::MetricType::Counter, cpu));
      out.push_back(Single("process_resident_memory_bytes", "Resident memory size in bytes.",
                           prometheus::MetricType::Gauge,
                           std::stod(f[21]) * sysconf(_SC_PAGESIZE)));
      std::ifstream uptime("/proc/stat");
      double boot = 0;
      for (std::string l; std::getline(uptime, l);) {
        if (l.rfind("btime ", 0) == 0) boot = std::stod(l.substr(6));
      }
      out.push_back(Single("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           prometheus::MetricType::Gauge, boot + std::stod(f[19]) / tick));
    }
    int fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d)) fds += e->d_name[0] != '.';
      closedir(d);
    }
    out.push_back(Single("process_open_fds", "Number of open file descriptors.",
                         prometheus::MetricType::Gauge, fds - 1));  // minus the one listing them
    return out;
  }
};

}  // namespace

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : requests(prometheus::BuildCounter()
                     .Name("cnnserve_requests_total")
                     .Help("Requests answered, by model, version and gRPC code.")
                     .Register(r)),
        request_duration(prometheus::BuildHistogram()
                             .Name("cnnserve_request_duration_seconds")
                             .Help("End-to-end request time, from arrival to answer.")
                             .Register(r)),
        queue_duration(prometheus::BuildHistogram()
                           .Name("cnnserve_queue_duration_seconds")
                           .Help("Time a request waited in its model's queue.")
                           .Register(r)),
        preprocess_duration(prometheus::BuildHistogram()
                                .Name("cnnserve_preprocess_duration_seconds")
                                .Help("Time to check and copy a request's input tensor, or to decode its "
                                      "images (on the batch's worker, just before it runs).")
                                .Register(r)),
        compute_duration(prometheus::BuildHistogram()
                             .Name("cnnserve_compute_duration_seconds")
                             .Help("Engine time per executed batch.")
                             .Register(r)),
        batch_size(prometheus::BuildHistogram()
                       .Name("cnnserve_batch_size")
                       .Help("Items in each executed batch.")
                       .Register(r)),
        queue_depth(prometheus::BuildGauge()
                        .Name("cnnserve_queue_depth")
                        .Help("Requests waiting in the model's queue.")
                        .Register(r)),
        inflight(prometheus::BuildGauge()
                     .Name("cnnserve_inflight_requests")
                     .Help("Requests accepted and not yet answered.")
                     .Register(r)),
        ready(prometheus::BuildGauge()
                  .Name("cnnserve_model_ready")
                  .Help("1 when the model version is loaded and serving, else 0.")
                  .Register(r)),
        load_duration(prometheus::BuildGauge()
                          .Name("cnnserve_model_load_duration_seconds")
                          .Help("How long the model version took to load.")
                          .Register(r)),
        slo_shed(prometheus::BuildCounter()
                     .Name("cnnserve_slo_shed_total")
                     .Help("Requests refused at once because they were predicted to finish past "
                           "the model's latency SLO or their deadline.")
                     .Register(r)),
        batch_cost_fixed(prometheus::BuildGauge()
                             .Name("cnnserve_batch_cost_fixed_seconds")
                             .Help("The SLO scheduler's cost model t(b) = fixed + b * per_item: fixed.")
                             .Register(r)),
        batch_cost_per_item(prometheus::BuildGauge()
                                .Name("cnnserve_batch_cost_per_item_seconds")
                                .Help("The SLO scheduler's cost model: per_item.")
                                .Register(r)),
        target_batch_size(prometheus::BuildGauge()
                              .Name("cnnserve_slo_target_batch_size")
                              .Help("The batch size the SLO scheduler aims for at the current "
                                    "arrival rate.")
                              .Register(r)),
        admission_margin(prometheus::BuildGauge()
                             .Name("cnnserve_slo_admission_margin")
                             .Help("The factor on t(b) the SLO scheduler's admission predicts "
                                   "with; rises when batches end past their SLO.")
                             .Register(r)),
        build_info(prometheus::BuildGauge()
                       .Name("cnnserve_build_info")
                       .Help("Always 1; the labels say what was built.")
                       .Register(r)) {}

  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& request_duration;
  prometheus::Family<prometheus::Histogram>& queue_duration;
  prometheus::Family<prometheus::Histogram>& preprocess_duration;
  prometheus::Family<prometheus::Histogram>& compute_duration;
  prometheus::Family<prometheus::Histogram>& batch_size;
  prometheus::Family<prometheus::Gauge>& queue_depth;
  prometheus::Family<prometheus::Gauge>& inflight;
  prometheus::Family<prometheus::Gauge>& ready;
  prometheus::Family<prometheus::Gauge>& load_duration;
  prometheus::Family<prometheus::Counter>& slo_shed;
  prometheus::Family<prometheus::Gauge>& batch_cost_fixed;
  prometheus::Family<prometheus::Gauge>& batch_cost_per_item;
  prometheus::Family<prometheus::Gauge>& target_batch_size;
  prometheus::Family<prometheus::Gauge>& admission_margin;
  prometheus::Family<prometheus::Gauge>& build_info;
  ProcessCollector process;
};

void ModelMetrics::CountRequest(absl::StatusCode code) const {
  requests->Add({{"model", model}, {"version", version}, {"code", absl::StatusCodeToString(code)}})
      .Increment();
}

Metrics::Metrics(const std::string& version, const std::string& onednn, const std::string& grpc)
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)) {
  families_->build_info.Add({{"version", version}, {"onednn", onednn}, {"grpc", grpc}}).Set(1);
}

Metrics::~Metrics() = default;

ModelMetrics* Metrics::ForModel(const std::string& model, const std::string& version,
                                int64_t max_batch_size) {
  absl::MutexLock lock(&mu_);
  auto& slot = models_[{model, version}];
  if (slot == nullptr) {
    const std::map<std::string, std::string> labels = {{"model", model}, {"version", version}};
    auto m = std::make_unique<ModelMetrics>();
    m->requests = &families_->requests;
    m->model = model;
    m->version = version;
    m->request_duration = &families_->request_duration.Add(labels, DurationBuckets());
    m->queue_duration = &families_->queue_duration.Add(labels, DurationBuckets());
    m->preprocess_duration = &families_->preprocess_duration.Add(labels, DurationBuckets());
    m->compute_duration = &families_->compute_duration.Add(labels, DurationBuckets());
    m->batch_size = &families_->batch_size.Add(labels, BatchBuckets(std::max<int64_t>(1, max_batch_size)));
    m->queue_depth = &families_->queue_depth.Add(labels);
    m->inflight = &families_->inflight.Add(labels);
    m->ready = &families_->ready.Add(labels);
    m->load_duration = &families_->load_duration.Add(labels);
    m->slo_shed = &families_->slo_shed.Add(labels);
    m->batch_cost_fixed = &families_->batch_cost_fixed.Add(labels);
    m->batch_cost_per_item = &families_->batch_cost_per_item.Add(labels);
    m->target_batch_size = &families_->target_batch_size.Add(labels);
    m->admission_margin = &families_->admission_margin.Add(labels);
    slot = std::move(m);
  }
  return slot.get();
}

std::string Metrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (auto& f : families_->process.Collect()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace cnnserve::server
