#include "server/classifier_service.h"

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/classifier_head.h"
#include "engine/cost.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/cancellable_reactor.h"
#include "server/grpc_status.h"

namespace cnnserve::server {
namespace {

constexpr int kDefaultTopK = 5;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void AddTensorInfo(const engine::ValueInfo& v, v1::TensorInfo* t) {
  t->set_name(v.name);
  t->set_datatype("FP32");
  for (int64_t d : v.shape) t->add_shape(d);
}

}  // namespace

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  const absl::Time arrived = absl::Now();
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kInference); !s.ok()) return Finish(context, s);
  }
  if (drain_->Refuse()) return Finish(context, absl::UnavailableError("the server is shutting down"));
  auto found = repository_->Find(request->model(), request->version());
  if (!found.ok()) {
    // As ModelInfer does: unknown names count under model="" (bounded labels).
    metrics_->ForModel("", "", 1)->CountRequest(found.status().code());
    return Finish(context, found.status());
  }
  std::shared_ptr<const ServedModel> m = *std::move(found);
  const ModelMetrics* metrics = m->metrics;
  auto fail = [&](const absl::Status& s) {
    metrics->CountRequest(s.code());
    return Finish(context, s);
  };
  if (!m->accepts_images) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "model '", m->name, "' does not take images: its input is ",
        engine::ShapeToString(m->model->input().shape), ", not [N, 1 or 3, H, W]")));
  }
  const int64_t n = request->images_size();
  if (n == 0) return fail(absl::InvalidArgumentError("the request has no images; send 1 or more"));
  if (n > m->max_batch_size()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "the request has ", n, " images; model '", m->name, "' takes at most max_batch_size ",
        m->max_batch_size(), " per request")));
  }
  if (request->top_k() < 0) {
    return fail(absl::InvalidArgumentError(absl::StrCat("top_k must not be negative, got ", request->top_k())));
  }
  // Refuse before decoding when the queue cannot take the request.
  if (absl::Status s = m->batcher->Precheck(n, RequestDeadline(*context, m->default_timeout())); !s.ok()) {
    return fail(s);
  }
  metrics->inflight->Increment();
  auto* reactor = new CancellableReactor();
  reactor->set_on_cancel(DropQueuedOnCancel(m));  // its queue slot comes back at once
  const ServedModel* model = m.get();
  const int64_t top_k = request->top_k() > 0 ? request->top_k() : kDefaultTopK;
  // The batcher's worker decodes the images, off the gRPC threads; the
  // request lives until the RPC finishes.
  auto decode_item = [request, model](int64_t i, float* out) -> absl::Status {
    absl::Status s = image::DecodeAndPreprocess(request->images(i), model->preprocess, out);
    if (s.ok()) return s;
    return absl::InvalidArgumentError(absl::StrCat("image ", i, ": ", s.message()));
  };
  SubmitInfer(
      std::move(m), n, {}, RequestDeadline(*context, model->default_timeout()),
      [context] { return context->IsCancelled(); },
      [model, response, reactor, metrics, arrived, top_k](
          absl::StatusOr<std::vector<engine::Tensor>> out, absl::Duration, absl::Duration) {
        absl::Status status = out.status();
        if (status.ok()) {
          response->set_model(model->name);
          response->set_version(std::to_string(model->version));
          const engine::Tensor& logits = (*out)[0];
          const int64_t classes = engine::ItemElements(logits.shape);
          const bool probabilities = model->outputs_probabilities;
          for (int64_t i = 0; i < logits.shape[0]; ++i) {
            absl::Span<const float> row(logits.data.data() + i * classes, classes);
            std::vector<float> scores =
                probabilities ? std::vector<float>(row.begin(), row.end()) : engine::Softmax(row);
            auto* result = response->add_results();
            for (const engine::ClassScore& c : engine::TopK(scores, top_k)) {
              auto* cls = result->add_classes();
              cls->set_index(c.index);
              cls->set_score(c.score);
              if (c.index < static_cast<int64_t>(model->labels.size())) {
                cls->set_label(model->labels[c.index]);
              }
            }
          }
        }
        metrics->CountRequest(status.code());
        metrics->request_duration->Observe(absl::ToDoubleSeconds(absl::Now() - arrived));
        metrics->inflight->Decrement();
        reactor->Finish(ToGrpcStatus(status));
      },
      std::move(decode_item));
  return reactor;
}

grpc::ServerUnaryReactor* ClassifierService::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest*,
                                                        v1::ListModelsResponse* response) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kInference); !s.ok()) return Finish(context, s);
  }
  for (const ModelRepository::IndexEntry& e : repository_->Index(/*ready_only=*/false)) {
    auto* m = response->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClassifierService::DescribeModel(grpc::CallbackServerContext* context,
                                                           const v1::DescribeModelRequest* request,
                                                           v1::DescribeModelResponse* response) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kInference); !s.ok()) return Finish(context, s);
  }
  auto found = repository_->Find(request->model(), request->version());
  if (!found.ok()) return Finish(context, found.status());
  const ServedModel& m = **found;
  response->set_name(m.name);
  response->set_version(std::to_string(m.version));
  response->set_platform(m.config.platform());
  std::string description = m.config.description();
  if (m.config.platform() == "zoo") {
    absl::StrAppend(&description, description.empty() ? "" : " ", "(built-in zoo:", m.config.zoo(),
                    " with random He-initialised weights: for benchmarking, its classes mean nothing)");
  }
  response->set_description(description);
  AddTensorInfo(m.model->input(), response->add_inputs());
  for (const engine::ValueInfo& out : m.model->outputs()) AddTensorInfo(out, response->add_outputs());
  if (m.accepts_images) {
    v1::ImagePreprocessing* p = response->mutable_preprocessing();
    *p = m.config.input();
    p->set_format(m.preprocess.channels == 1 ? v1::ImagePreprocessing::GRAY
                  : m.preprocess.bgr         ? v1::ImagePreprocessing::BGR
                                             : v1::ImagePreprocessing::RGB);
  }
  response->set_labels_count(static_cast<int64_t>(m.labels.size()));
  response->set_max_batch_size(m.max_batch_size());
  *response->mutable_dynamic_batching() = m.config.dynamic_batching();
  *response->mutable_instance_group() = m.config.instance_group();
  if (m.autotune.has_value()) {
    v1::Autotune* out = response->mutable_autotune();
    out->set_instances(m.autotune->instances);
    out->set_threads(m.autotune->threads);
    out->set_reason(m.autotune->reason);
    out->set_cached(m.autotune->cached);
    for (const TuneTrial& t : m.autotune->trials) {
      v1::Autotune::Trial* trial = out->add_trials();
      trial->set_instances(t.instances);
      trial->set_threads(t.threads);
      trial->set_batch(t.batch);
      trial->set_items_per_second(t.items_per_second);
      trial->set_batch_latency_micros(absl::ToDoubleMicroseconds(t.batch_latency));
    }
  }
  if (auto slo = m.batcher->slo_state(); slo.has_value()) {
    v1::SloScheduler* out = response->mutable_slo_scheduler();
    out->set_latency_slo_micros(m.config.dynamic_batching().latency_slo_micros());
    out->set_cost_fixed_micros(absl::ToDoubleMicroseconds(slo->cost.fixed));
    out->set_cost_per_item_micros(absl::ToDoubleMicroseconds(slo->cost.per_item));
    out->set_cost_samples(slo->cost.samples);
    out->set_cost_relative_spread(slo->cost.relative_spread);
    out->set_arrivals_per_second(slo->arrivals_per_second);
    out->set_target_batch_size(slo->target_batch);
    out->set_admission_margin(slo->admission_margin);
  }
  auto layers = engine::GraphCost(m.model->graph(), 1);
  if (layers.ok()) {
    for (const engine::LayerCost& l : *layers) {
      auto* layer = response->add_layers();
      layer->set_name(l.name);
      layer->set_op(l.op);
      for (size_t d = 1; d < l.output.size(); ++d) layer->add_output_shape(l.output[d]);
      layer->set_params(l.params);
      layer->set_macs(l.macs);
    }
  }
  return Finish(context, absl::OkStatus());
}

}  // namespace cnnserve::server
