#include "client/perf.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <random>
#include <thread>

#include <sys/resource.h>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/grpc_error.h"
#include "client/http_get.h"
#include "client/latency_stats.h"
#include "client/pacer.h"
#include "client/server_metrics.h"
#include "client/svg_plot.h"
#include "engine/status_macros.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace cnnserve::client {
namespace {

namespace fs = std::filesystem;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr int kMaxConcurrency = 4096;

absl::StatusOr<std::vector<ModelInferRequest>> BuildRequests(inference::GRPCInferenceService::Stub& stub,
                                                             const PerfOptions& o) {
  inference::ModelMetadataRequest meta_request;
  meta_request.set_name(o.model);
  meta_request.set_version(o.version);
  inference::ModelMetadataResponse meta;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = stub.ModelMetadata(&context, meta_request, &meta);
  RETURN_IF_ERROR(FromGrpc("ModelMetadata", status));
  if (meta.inputs_size() != 1) {
    return absl::FailedPreconditionError(absl::StrCat("model '", o.model, "' has ",
                                                      meta.inputs_size(), " inputs; perf feeds one"));
  }
  const auto& input = meta.inputs(0);
  std::vector<ModelInferRequest> requests;
  auto base = [&] {
    ModelInferRequest r;
    r.set_model_name(o.model);
    r.set_model_version(o.version);
    auto* t = r.add_inputs();
    t->set_name(input.name());
    return r;
  };
  if (!o.images.empty()) {
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.images, ec)) {
      const std::string ext = absl::AsciiStrToLower(e.path().extension().string());
      if (ext != ".png" && ext != ".jpg" && ext != ".jpeg") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      files.push_back(s.str());
    }
    if (ec || files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("no .png/.jpg files in '", o.images, "'"));
    }
    std::sort(files.begin(), files.end());
    for (size_t first = 0; first < files.size(); first += o.batch) {
      ModelInferRequest r = base();
      auto* t = r.mutable_inputs(0);
      t->set_datatype("BYTES");
      t->add_shape(o.batch);
      std::string raw;
      for (int i = 0; i < o.batch; ++i) {
        const std::string& f = files[(first + i) % files.size()];
        const uint32_t n = f.size();
        const char len[4] = {char(n & 255), char((n >> 8) & 255), char((n >> 16) & 255), char(n >> 24)};
        raw.append(len, 4);
        raw += f;
      }
      r.add_raw_input_contents(std::move(raw));
      requests.push_back(std::move(r));
    }
    return requests;
  }
  int64_t per_item = 1;
  for (int i = 1; i < input.shape_size(); ++i) {
    if (input.shape(i) < 1) {
      return absl::FailedPreconditionError("the model's input has a free dimension besides the batch");
    }
    per_item *= input.shape(i);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (int k = 0; k < 4; ++k) {
    ModelInferRequest r = base();
    auto* t = r.mutable_inputs(0);
    t->set_datatype("FP32");
    t->add_shape(o.batch);
    for (int i = 1; i < input.shape_size(); ++i) t->add_shape(input.shape(i));
    std::vector<float> values(per_item * o.batch);
    for (float& v : values) v = uniform(rng);
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    requests.push_back(std::move(r));
  }
  return requests;
}

// One answered request, as the measurement windows see it.
struct Record {
  absl::Time done;
  float latency_ms;
  int code;  // grpc::StatusCode
};

// The load of one step: a closed loop of `concurrency` slots or an open
// loop at `rate`, recording every answer until Stop() and drained.
class Generator {
 public:
  Generator(inference::GRPCInferenceService::Stub* stub,
            const std::vector<ModelInferRequest>* requests, const PerfOptions& o)
      : stub_(stub), requests_(requests), options_(o) {}

  void StartClosed(int concurrency) {
    for (int i = 0; i < concurrency; ++i) Issue(absl::Now());
  }
  void StartOpen(double rate) {
    sender_ = std::thread([this, rate] {
      Pacer pacer(rate, options_.poisson, absl::Now());
      for (;;) {
        const absl::Time t = pacer.Next();
        const absl::Duration wait = t - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) return;
          if (in_flight_ >= kMaxInFlight) {  // the client itself is the bottleneck
            records_.push_back({absl::Now(), 0, kClientBacklog});
            continue;
          }
        }
        Issue(t);
      }
    });
  }
  // Stops sending and waits for every request in flight to be answered.
  void StopAndDrain() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (sender_.joinable()) sender_.join();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](int64_t* n) { return *n == 0; }, &in_flight_));
  }
  // Records answered since `from` (an index into the record list).
  std::vector<Record> Since(size_t from, size_t* next) {
    absl::MutexLock lock(&mu_);
    *next = records_.size();
    return std::vector<Record>(records_.begin() + std::min(from, records_.size()), records_.end());
  }
  int64_t sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  int64_t answered() {
    absl::MutexLock lock(&mu_);
    return answered_;
  }

  static constexpr int kClientBacklog = -1;

 private:
  static constexpr int64_t kMaxInFlight = 20000;
  struct Call {
    grpc::ClientContext context;
    ModelInferResponse response;
    absl::Time scheduled;
  };

  void Issue(absl::Time scheduled) {
    auto* call = new Call;
    call->scheduled = scheduled;
    if (options_.deadline_ms > 0) {
      call->context.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(options_.deadline_ms));
    }
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
      index = sent_++;
    }
    const ModelInferRequest& r = (*requests_)[index % requests_->size()];
    stub_->async()->ModelInfer(&call->context, &r, &call->response,
                               [this, call](grpc::Status status) { Done(call, status); });
  }

  void Done(Call* call, const grpc::Status& status) {
    const absl::Time now = absl::Now();
    const float latency = static_cast<float>(absl::ToDoubleMilliseconds(now - call->scheduled));
    delete call;
    bool again = false;
    {
      absl::MutexLock lock(&mu_);
      records_.push_back({now, latency, static_cast<int>(status.error_code())});
      ++answered_;
      --in_flight_;
      again = !stopping_ && !sender_.joinable();  // closed loop: keep the slot busy
    }
    if (again) Issue(absl::Now());
  }

  inference::GRPCInferenceService::Stub* stub_;
  const std::vector<ModelInferRequest>* requests_;
  const PerfOptions& options_;
  std::thread sender_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Record> records_ ABSL_GUARDED_BY(mu_);
};

struct Window {
  LatencyStats stats;
  LatencyStats error_stats;  // how fast refusals came back
  std::map<std::string, int64_t> errors;
  double seconds = 0;
  double rps() const { return seconds > 0 ? stats.count() / seconds : 0; }
};

void AddToWindow(const Record& r, Window* w) {
  if (r.code == 0) {
    w->stats.Add(r.latency_ms);
  } else {
    if (r.code != Generator::kClientBacklog) w->error_stats.Add(r.latency_ms);
    ++w->errors[r.code == Generator::kClientBacklog
                    ? "CLIENT_BACKLOG"
                    : absl::StatusCodeToString(static_cast<absl::StatusCode>(r.code))];
  }
}

bool Agree(double a, double b, double tolerance) {
  return std::abs(a - b) <= tolerance * std::max(std::abs(a), std::abs(b));
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

absl::StatusOr<ServerCounters> Scrape(const PerfOptions& o) {
  ASSIGN_OR_RETURN(std::string page, HttpGet(o.metrics_url));
  return ParseServerCounters(page, o.model);
}

absl::StatusOr<PerfStep> RunStep(inference::GRPCInferenceService::Stub* stub,
                                 const std::vector<ModelInferRequest>& requests,
                                 const PerfOptions& o, int concurrency, double rate) {
  PerfStep step;
  step.concurrency = concurrency;
  step.rate = rate;
  step.label = rate > 0 ? absl::StrCat("r=", rate) : absl::StrCat("c=", concurrency);
  ServerCounters server_before;
  if (!o.metrics_url.empty()) {
    ASSIGN_OR_RETURN(server_before, Scrape(o));
  }
  const double cpu_before = CpuSeconds();
  Generator gen(stub, &requests, o);
  const absl::Time start = absl::Now();
  if (rate > 0) {
    gen.StartOpen(rate);
  } else {
    gen.StartClosed(concurrency);
  }
  size_t cursor = 0;
  absl::SleepFor(absl::Seconds(o.warmup_s));
  gen.Since(0, &cursor);  // warm-up answers are not measured
  std::vector<Window> windows;
  while (static_cast<int>(windows.size()) < o.max_windows) {
    Window w;
    const absl::Time window_start = absl::Now();
    const absl::Time window_end = window_start + absl::Seconds(o.duration_s);
    absl::Time last_progress = window_start;
    for (;;) {
      absl::SleepFor(absl::Milliseconds(20));
      for (const Record& r : gen.Since(cursor, &cursor)) AddToWindow(r, &w);
      const absl::Time now = absl::Now();
      const bool done = o.requests > 0 ? w.stats.count() >= o.requests : now >= window_end;
      if (o.progress && (now - last_progress >= absl::Seconds(1) || done)) {
        last_progress = now;
        std::cerr << absl::StrFormat("\r  %-8s window %d: %8.1f req/s, p50 %.2f ms   ", step.label,
                                     windows.size() + 1,
                                     w.stats.count() / absl::ToDoubleSeconds(now - window_start),
                                     w.stats.Percentile(50))
                  << std::flush;
      }
      if (done) {
        w.seconds = absl::ToDoubleSeconds(now - window_start);
        break;
      }
    }
    windows.push_back(std::move(w));
    const size_t n = windows.size();
    if (n >= 2 && Agree(windows[n - 1].rps(), windows[n - 2].rps(), o.stability) &&
        Agree(windows[n - 1].stats.Mean(), windows[n - 2].stats.Mean(), o.stability)) {
      step.stable = true;
      break;
    }
  }
  if (o.progress) std::cerr << "\r" << std::string(70, ' ') << "\r";
  gen.StopAndDrain();
  (void)start;
  step.windows = static_cast<int>(windows.size());
  Window reported = windows.back();
  if (windows.size() >= 2) {
    const Window& prev = windows[windows.size() - 2];
    reported.stats.Merge(prev.stats);
    reported.error_stats.Merge(prev.error_stats);
    for (const auto& [code, count] : prev.errors) reported.errors[code] += count;
    reported.seconds += prev.seconds;
  }
  step.requests = reported.stats.count();
  step.errors = reported.errors;
  step.seconds = reported.seconds;
  step.requests_per_s = reported.rps();
  step.images_per_s = step.requests_per_s * o.batch;
  step.p50_ms = reported.stats.Percentile(50);
  step.p90_ms = reported.stats.Percentile(90);
  step.p95_ms = reported.stats.Percentile(95);
  step.p99_ms = reported.stats.Percentile(99);
  step.max_ms = reported.stats.Max();
  step.mean_ms = reported.stats.Mean();
  step.error_p50_ms = reported.error_stats.Percentile(50);
  step.error_p90_ms = reported.error_stats.Percentile(90);
  step.error_p99_ms = reported.error_stats.Percentile(99);
  if (o.slo_p99_ms > 0) {
    int64_t seen = step.requests;
    for (const auto& [code, n] : step.errors) seen += n;
    step.within_slo = reported.stats.CountAtMost(o.slo_p99_ms);
    step.within_slo_per_s = step.seconds > 0 ? step.within_slo / step.seconds : 0;
    step.within_slo_fraction = seen > 0 ? static_cast<double>(step.within_slo) / seen : 0;
  }
  step.sent = gen.sent();
  step.answered = gen.answered();
  if (step.answered > 0) step.client_cpu_us_per_request = (CpuSeconds() - cpu_before) / step.answered * 1e6;
  if (!o.metrics_url.empty()) {
    ASSIGN_OR_RETURN(ServerCounters after, Scrape(o));
    const ServerDelta d = Delta(server_before, after);
    step.has_server = true;
    step.server_requests = d.requests;
    step.server_batches = d.batches;
    step.server_queue_ms = d.mean_queue_ms;
    step.server_compute_ms = d.mean_compute_ms;
    step.server_batch_size = d.mean_batch_size;
  }
  return step;
}

std::string ErrorsText(const std::map<std::string, int64_t>& errors) {
  std::string s;
  for (const auto& [code, n] : errors) absl::StrAppend(&s, s.empty() ? "" : ",", code, "=", n);
  return s.empty() ? "0" : s;
}

std::string StepJson(const PerfStep& s, int batch) {
  std::string errors;
  for (const auto& [code, n] : s.errors) absl::StrAppend(&errors, errors.empty() ? "" : ",", "\"", code, "\":", n);
  std::string json = absl::StrFormat(
      "{\"label\":\"%s\",\"concurrency\":%d,\"rate\":%g,\"batch\":%d,\"windows\":%d,"
      "\"stable\":%s,\"requests\":%d,\"seconds\":%g,\"requests_per_s\":%g,"
      "\"images_per_s\":%g,\"p50_ms\":%g,\"p90_ms\":%g,\"p95_ms\":%g,\"p99_ms\":%g,"
      "\"max_ms\":%g,\"mean_ms\":%g,\"errors\":{%s},\"sent\":%d,\"answered\":%d,"
      "\"client_cpu_us_per_request\":%g,\"error_p50_ms\":%g,\"error_p90_ms\":%g,"
      "\"error_p99_ms\":%g,\"within_slo\":%d,"
      "\"within_slo_per_s\":%g,\"within_slo_fraction\":%g",
      s.label, s.concurrency, s.rate, batch, s.windows, s.stable ? "true" : "false", s.requests,
      s.seconds, s.requests_per_s, s.images_per_s, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms,
      s.max_ms, s.mean_ms, errors, s.sent, s.answered, s.client_cpu_us_per_request, s.error_p50_ms,
      s.error_p90_ms, s.error_p99_ms,
      s.within_slo, s.within_slo_per_s, s.within_slo_fraction);
  if (s.has_server) {
    absl::StrAppendFormat(&json,
                          ",\"server\":{\"requests\":%d,\"batches\":%d,\"queue_ms\":%g,"
                          "\"compute_ms\":%g,\"batch_size\":%g}",
                          s.server_requests, s.server_batches, s.server_queue_ms,
                          s.server_compute_ms, s.server_batch_size);
  }
  return json + "}";
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseConcurrency(const std::string& text) {
  std::vector<int> levels;
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "concurrency '", text, "' is not a list (1,2,4) or a range (1:64:x2 or 1:8:+1) of 1 to ",
        kMaxConcurrency));
  };
  if (absl::StrContains(text, ':')) {
    std::vector<std::string> parts = absl::StrSplit(text, ':');
    int from = 0, to = 0, step = 0;
    if (parts.size() != 3 || parts[2].size() < 2 || !absl::SimpleAtoi(parts[0], &from) ||
        !absl::SimpleAtoi(parts[1], &to) || !absl::SimpleAtoi(parts[2].substr(1), &step) ||
        from < 1 || to < from || to > kMaxConcurrency) {
      return bad();
    }
    if (parts[2][0] == 'x' && step >= 2) {
      for (int64_t c = from; c <= to; c *= step) levels.push_back(static_cast<int>(c));
    } else if (parts[2][0] == '+' && step >= 1) {
      for (int c = from; c <= to; c += step) levels.push_back(c);
    } else {
      return bad();
    }
    return levels;
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int c = 0;
    if (!absl::SimpleAtoi(part, &c) || c < 1 || c > kMaxConcurrency) return bad();
    levels.push_back(c);
  }
  return levels;
}

absl::StatusOr<std::vector<double>> ParseRates(const std::string& text) {
  std::vector<double> rates;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double r = 0;
    if (!absl::SimpleAtod(part, &r) || !(r > 0) || r > 1e6) {
      return absl::InvalidArgumentError(
          absl::StrCat("rate '", text, "' is not a list of requests/s, each in (0, 1000000]"));
    }
    rates.push_back(r);
  }
  return rates;
}

absl::StatusOr<std::vector<PerfStep>> Perf(const std::shared_ptr<grpc::Channel>& channel,
                                           const PerfOptions& options, std::ostream& out) {
  if (options.model.empty()) return absl::InvalidArgumentError("perf needs --model");
  if (options.batch < 1) return absl::InvalidArgumentError("--batch must be at least 1");
  if (!(options.duration_s > 0) || options.warmup_s < 0 || options.requests < 0) {
    return absl::InvalidArgumentError(
        "--duration_s must be positive, --warmup_s and --requests not negative");
  }
  if (options.max_windows < 1 || !(options.stability > 0)) {
    return absl::InvalidArgumentError("--max_windows must be at least 1 and --stability positive");
  }
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  ASSIGN_OR_RETURN(std::vector<ModelInferRequest> requests, BuildRequests(*stub, options));
  if (!options.metrics_url.empty()) RETURN_IF_ERROR(Scrape(options).status());
  const bool open = !options.rates.empty();
  out << absl::StrFormat("%-9s %10s %10s %9s %9s %9s %9s %9s %5s  %s%s\n", open ? "rate" : "concurrency",
                         "req/s", "img/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "win",
                         "errors", options.metrics_url.empty() ? "" : "  server: queue ms, compute ms, batch");
  std::vector<PerfStep> steps;
  const size_t n = open ? options.rates.size() : options.concurrency.size();
  for (size_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(PerfStep s, RunStep(stub.get(), requests, options,
                                         open ? 0 : options.concurrency[i], open ? options.rates[i] : 0));
    out << absl::StrFormat("%-9s %10.1f %10.1f %9.3f %9.3f %9.3f %9.3f %9.3f %4d%s  %s", s.label,
                           s.requests_per_s, s.images_per_s, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms,
                           s.max_ms, s.windows, s.stable ? " " : "!", ErrorsText(s.errors));
    if (s.has_server) {
      out << absl::StrFormat("  %.3f, %.3f, %.2f", s.server_queue_ms, s.server_compute_ms,
                             s.server_batch_size);
    }
    if (options.slo_p99_ms > 0) {
      out << absl::StrFormat("  within slo: %.1f%% (%.1f req/s)", 100 * s.within_slo_fraction,
                             s.within_slo_per_s);
    }
    out << "\n";
    if (s.error_p99_ms > 0) {
      out << absl::StrFormat("%-9s errors answered in p50 %.3f, p90 %.3f, p99 %.3f ms\n", "", s.error_p50_ms,
                             s.error_p90_ms, s.error_p99_ms);
    }
    out.flush();
    steps.push_back(std::move(s));
  }
  double cpu = 0;
  int64_t answered = 0;
  for (const PerfStep& s : steps) {
    cpu += s.client_cpu_us_per_request * s.answered;
    answered += s.answered;
  }
  out << absl::StrFormat("client: %.1f us CPU per request (%d requests)%s\n",
                         answered > 0 ? cpu / answered : 0.0, answered,
                         std::any_of(steps.begin(), steps.end(), [](const PerfStep& s) { return !s.stable; })
                             ? "; '!': the last two windows did not agree within --stability"
                             : "");
  if (options.slo_p99_ms > 0) {
    const PerfStep* best = nullptr;
    for (const PerfStep& s : steps) {
      if (s.p99_ms <= options.slo_p99_ms && s.errors.empty() &&
          (best == nullptr || s.requests_per_s > best->requests_per_s)) {
        best = &s;
      }
    }
    if (best != nullptr) {
      out << absl::StrFormat("slo: p99 <= %g ms holds up to %.1f req/s (%.1f img/s) at %s\n",
                             options.slo_p99_ms, best->requests_per_s, best->images_per_s, best->label);
    } else {
      out << absl::StrFormat("slo: no step met p99 <= %g ms without errors\n", options.slo_p99_ms);
    }
  }
  if (!options.json_path.empty()) {
    std::ofstream json(options.json_path);
    json << "{\"model\":\"" << options.model << "\",\"batch\":" << options.batch << ",\"steps\":[";
    for (size_t i = 0; i < steps.size(); ++i) json << (i ? ",\n" : "\n") << StepJson(steps[i], options.batch);
    json << "\n]}\n";
    if (!json) return absl::UnavailableError("cannot write " + options.json_path);
  }
  if (!options.csv_path.empty()) {
    std::ofstream csv(options.csv_path);
    csv << "label,concurrency,rate,batch,requests,seconds,requests_per_s,images_per_s,p50_ms,p90_ms,"
           "p95_ms,p99_ms,max_ms,mean_ms,errors,sent,answered,stable,within_slo_per_s,"
           "within_slo_fraction\n";
    for (const PerfStep& s : steps) {
      csv << absl::StrFormat("%s,%d,%g,%d,%d,%g,%g,%g,%g,%g,%g,%g,%g,%g,%d,%d,%d,%s,%g,%g\n", s.label,
                             s.concurrency, s.rate, options.batch, s.requests, s.seconds,
                             s.requests_per_s, s.images_per_s, s.p50_ms, s.p90_ms, s.p95_ms,
                             s.p99_ms, s.max_ms, s.mean_ms,
                             [&] {
                               int64_t e = 0;
                               for (const auto& [c, k] : s.errors) e += k;
                               return e;
                             }(),
                             s.sent, s.answered, s.stable ? "true" : "false", s.within_slo_per_s,
                             s.within_slo_fraction);
    }
    if (!csv) return absl::UnavailableError("cannot write " + options.csv_path);
  }
  if (!options.plot_path.empty()) {
    std::vector<PlotPoint> points;
    for (const PerfStep& s : steps) points.push_back({s.requests_per_s, s.p50_ms, s.p90_ms, s.p99_ms, s.label});
    std::ofstream svg(options.plot_path);
    svg << LatencyThroughputSvg(points, absl::StrCat(options.model, ": latency against throughput (batch ",
                                                      options.batch, ")"));
    if (!svg) return absl::UnavailableError("cannot write " + options.plot_path);
  }
  return steps;
}

}  // namespace cnnserve::client
