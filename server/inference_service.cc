#include "server/inference_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
#include "server/log.h"
#include "absl/time/clock.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/infer_task.h"
#include "server/tensor_codec.h"

namespace cnnserve::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void AddTensorMetadata(const engine::ValueInfo& v,
                       inference::ModelMetadataResponse::TensorMetadata* t) {
  t->set_name(v.name);
  t->set_datatype("FP32");
  for (int64_t d : v.shape) t->add_shape(d);
}

}  // namespace

grpc::ServerUnaryReactor* InferenceService::ServerLive(grpc::CallbackServerContext* context,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* response) {
  response->set_live(true);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(grpc::CallbackServerContext* context,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* response) {
  response->set_ready(Ready());
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(grpc::CallbackServerContext* context,
                                                       const inference::ModelReadyRequest* request,
                                                       inference::ModelReadyResponse* response) {
  auto model = repository_->Find(request->name(), request->version());
  if (!model.ok() && model.status().code() == absl::StatusCode::kNotFound) {
    return Finish(context, model.status());
  }
  response->set_ready(model.ok() && !draining_);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("cnnserve");
  response->set_version(CNNSERVE_VERSION);
  response->add_extensions("classification");
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  auto model = repository_->Find(request->name(), request->version());
  if (!model.ok()) return Finish(context, model.status());
  const ServedModel& m = **model;
  response->set_name(m.name);
  response->add_versions(std::to_string(m.version));
  response->set_platform("onnx");
  AddTensorMetadata(m.model->input(), response->add_inputs());
  for (const engine::ValueInfo& out : m.model->outputs()) {
    AddTensorMetadata(out, response->add_outputs());
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* context,
                                                       const inference::ModelInferRequest* request,
                                                       inference::ModelInferResponse* response) {
  const absl::Time arrived = absl::Now();
  auto found = repository_->Find(request->model_name(), request->model_version());
  // Requests for a model that is not served count under model="" so that
  // unknown names cannot multiply the series.
  const ModelMetrics* metrics =
      found.ok() ? (*found)->metrics : metrics_->ForModel("", "", 1);
  metrics->inflight->Increment();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string peer = access_log_ ? context->peer() : "";
  // Answers the RPC and records it, from whichever thread finishes it.
  auto finish = [this, reactor, metrics, arrived, peer, request](const absl::Status& status,
                                                                 int64_t items,
                                                                 absl::Duration queued,
                                                                 absl::Duration compute) {
    const absl::Duration total = absl::Now() - arrived;
    metrics->CountRequest(status.code());
    metrics->request_duration->Observe(absl::ToDoubleSeconds(total));
    metrics->inflight->Decrement();
    if (access_log_) {
      Log(Severity::kInfo, "ModelInfer",
          {{"model", request->model_name()}, {"version", request->model_version()},
           {"code", absl::StatusCodeToString(status.code())}, {"items", absl::StrCat(items)},
           {"queue_ms", absl::StrCat(absl::ToDoubleMilliseconds(queued))},
           {"compute_ms", absl::StrCat(absl::ToDoubleMilliseconds(compute))},
           {"total_ms", absl::StrCat(absl::ToDoubleMilliseconds(total))}, {"peer", peer}});
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  if (draining_) {
    finish(absl::UnavailableError("the server is shutting down"), 0, {}, {});
    return reactor;
  }
  if (!found.ok()) {
    finish(found.status(), 0, {}, {});
    return reactor;
  }
  const ServedModel* m = *found;
  auto input = DecodeInferInput(*request, m->model->input());
  absl::Status valid = input.status();
  if (valid.ok()) valid = ResolveRequestedOutputs(*request, m->model->outputs()).status();
  metrics->preprocess_duration->Observe(absl::ToDoubleSeconds(absl::Now() - arrived));
  if (!valid.ok()) {
    finish(valid, 0, {}, {});
    return reactor;
  }
  auto task = std::make_unique<InferTask>();
  task->items = input->items;
  task->input = std::move(input->data);
  task->enqueued = absl::Now();
  InferTask* raw = task.get();
  task->done = [m, request, response, raw, finish](absl::StatusOr<std::vector<engine::Tensor>> out) {
    absl::Status status = out.status();
    if (status.ok()) {
      response->set_model_name(m->name);
      response->set_model_version(std::to_string(m->version));
      response->set_id(request->id());
      status = EncodeInferOutputs(*request, m->model->outputs(), *out, m->labels, response);
    }
    finish(status, raw->items, raw->queued, raw->compute);
  };
  const int64_t items = task->items;
  std::unique_ptr<BatchTask> base = std::move(task);
  metrics->queue_depth->Increment();
  absl::Status scheduled = m->batcher->Schedule(&base);
  if (!scheduled.ok()) {
    metrics->queue_depth->Decrement();
    finish(scheduled, items, {}, {});
  }
  return reactor;
}

}  // namespace cnnserve::server
