#include "server/inference_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
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
  if (draining_) return Finish(context, absl::UnavailableError("the server is shutting down"));
  auto model = repository_->Find(request->model_name(), request->model_version());
  if (!model.ok()) return Finish(context, model.status());
  const ServedModel* m = *model;
  auto input = DecodeInferInput(*request, m->model->input());
  if (!input.ok()) return Finish(context, input.status());
  auto outputs = ResolveRequestedOutputs(*request, m->model->outputs());
  if (!outputs.ok()) return Finish(context, outputs.status());

  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto task = std::make_unique<InferTask>();
  task->items = input->items;
  task->input = std::move(input->data);
  task->done = [m, request, response, reactor](absl::StatusOr<std::vector<engine::Tensor>> out) {
    absl::Status status = out.status();
    if (status.ok()) {
      response->set_model_name(m->name);
      response->set_model_version(std::to_string(m->version));
      response->set_id(request->id());
      status = EncodeInferOutputs(*request, m->model->outputs(), *out, m->labels, response);
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  std::unique_ptr<BatchTask> base = std::move(task);
  absl::Status scheduled = m->batcher->Schedule(&base);
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

}  // namespace cnnserve::server
