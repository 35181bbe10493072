#include "client/perf.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/grpc_error.h"
#include "client/latency_stats.h"
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
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inference::ModelMetadataRequest meta_request;
  meta_request.set_name(o.model);
  meta_request.set_version(o.version);
  inference::ModelMetadataResponse meta;
  RETURN_IF_ERROR(FromGrpc("ModelMetadata", stub.ModelMetadata(&context, meta_request, &meta)));
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

// One concurrency level: `concurrency` slots, each re-issuing its request
// from the completion callback until the step ends.
class Step {
 public:
  Step(inference::GRPCInferenceService::Stub* stub, const std::vector<ModelInferRequest>* requests,
       const PerfOptions& o, int concurrency)
      : stub_(stub), requests_(requests), options_(o), slots_(concurrency) {}

  PerfStep Run() {
    const absl::Time start = absl::Now();
    measure_start_ = start + absl::Seconds(options_.warmup_s);
    end_ = measure_start_ + absl::Seconds(options_.duration_s);
    active_ = static_cast<int>(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) Issue(&slots_[i], i);
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* active) { return *active == 0; }, &active_));
    }
    PerfStep step;
    step.concurrency = static_cast<int>(slots_.size());
    step.seconds = options_.duration_s;
    step.requests = stats_.count();
    step.errors = errors_;
    step.requests_per_s = step.requests / step.seconds;
    step.images_per_s = step.requests_per_s * options_.batch;
    step.p50_ms = stats_.Percentile(50);
    step.p90_ms = stats_.Percentile(90);
    step.p95_ms = stats_.Percentile(95);
    step.p99_ms = stats_.Percentile(99);
    step.max_ms = stats_.Max();
    step.mean_ms = stats_.Mean();
    return step;
  }

 private:
  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    ModelInferResponse response;
    absl::Time sent;
    size_t next = 0;
  };

  void Issue(Slot* s, size_t offset) {
    s->context = std::make_unique<grpc::ClientContext>();
    if (options_.deadline_ms > 0) {
      s->context->set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(options_.deadline_ms));
    }
    const ModelInferRequest& r = (*requests_)[(offset + s->next++) % requests_->size()];
    s->response.Clear();
    s->sent = absl::Now();
    stub_->async()->ModelInfer(s->context.get(), &r, &s->response,
                               [this, s, offset](grpc::Status status) { Done(s, offset, status); });
  }

  void Done(Slot* s, size_t offset, const grpc::Status& status) {
    const absl::Time now = absl::Now();
    const bool measured = now >= measure_start_ && now <= end_;
    {
      absl::MutexLock lock(&mu_);
      if (measured) {
        if (status.ok()) {
          stats_.Add(absl::ToDoubleMilliseconds(now - s->sent));
        } else {
          ++errors_[absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))];
        }
      }
      if (now >= end_) {
        --active_;
        return;
      }
    }
    Issue(s, offset);
  }

  inference::GRPCInferenceService::Stub* stub_;
  const std::vector<ModelInferRequest>* requests_;
  const PerfOptions& options_;
  std::vector<Slot> slots_;
  absl::Time measure_start_, end_;
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  LatencyStats stats_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
};

std::string ErrorsText(const std::map<std::string, int64_t>& errors) {
  std::string s;
  for (const auto& [code, n] : errors) absl::StrAppend(&s, s.empty() ? "" : ",", code, "=", n);
  return s.empty() ? "0" : s;
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

absl::StatusOr<std::vector<PerfStep>> Perf(const std::shared_ptr<grpc::Channel>& channel,
                                           const PerfOptions& options, std::ostream& out) {
  if (options.model.empty()) return absl::InvalidArgumentError("perf needs --model");
  if (options.batch < 1) return absl::InvalidArgumentError("--batch must be at least 1");
  if (!(options.duration_s > 0) || options.warmup_s < 0) {
    return absl::InvalidArgumentError("--duration_s must be positive and --warmup_s not negative");
  }
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  ASSIGN_OR_RETURN(std::vector<ModelInferRequest> requests, BuildRequests(*stub, options));
  std::ofstream json, csv;
  if (!options.json_path.empty()) json.open(options.json_path);
  if (!options.csv_path.empty()) {
    csv.open(options.csv_path);
    csv << "concurrency,requests,requests_per_s,images_per_s,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,errors\n";
  }
  out << absl::StrFormat("%-11s %10s %10s %9s %9s %9s %9s %9s  %s\n", "concurrency", "req/s", "img/s",
                         "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "errors");
  std::vector<PerfStep> steps;
  for (int c : options.concurrency) {
    PerfStep s = Step(stub.get(), &requests, options, c).Run();
    out << absl::StrFormat("%-11d %10.1f %10.1f %9.3f %9.3f %9.3f %9.3f %9.3f  %s\n", c,
                           s.requests_per_s, s.images_per_s, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms,
                           s.max_ms, ErrorsText(s.errors));
    out.flush();
    if (json.is_open()) {
      json << absl::StrFormat(
          "{\"concurrency\":%d,\"batch\":%d,\"requests\":%d,\"seconds\":%g,\"requests_per_s\":%g,"
          "\"images_per_s\":%g,\"p50_ms\":%g,\"p90_ms\":%g,\"p95_ms\":%g,\"p99_ms\":%g,"
          "\"max_ms\":%g,\"mean_ms\":%g,\"errors\":\"%s\"}\n",
          c, options.batch, s.requests, s.seconds, s.requests_per_s, s.images_per_s, s.p50_ms,
          s.p90_ms, s.p95_ms, s.p99_ms, s.max_ms, s.mean_ms, ErrorsText(s.errors));
    }
    if (csv.is_open()) {
      csv << absl::StrFormat("%d,%d,%g,%g,%g,%g,%g,%g,%g,%s\n", c, s.requests, s.requests_per_s,
                             s.images_per_s, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.max_ms,
                             ErrorsText(s.errors));
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

}  // namespace cnnserve::client
