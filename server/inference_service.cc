#include "server/inference_service.h"

#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/cancellable_reactor.h"
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

void SetString(inference::ModelMetadataResponse::TensorMetadata* t, const std::string& key,
               const std::string& value) {
  (*t->mutable_parameters())[key].set_string_param(value);
}

// Our one repository answers to "" and to its own path or directory name.
absl::Status CheckRepositoryName(const ModelRepository& repo, const std::string& name) {
  if (name.empty() || name == repo.root() ||
      name == std::filesystem::path(repo.root()).lexically_normal().filename().string()) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("unknown repository '", name,
                                          "'; this server serves one, '", repo.root(), "'"));
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
  response->set_ready(model.ok() && !drain_->closed());
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("cnnserve");
  response->set_version(CNNSERVE_VERSION);
  response->add_extensions("classification");
  response->add_extensions("model_repository");
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kInference); !s.ok()) return Finish(context, s);
  }
  auto model = repository_->Find(request->name(), request->version());
  if (!model.ok()) return Finish(context, model.status());
  const ServedModel& m = **model;
  response->set_name(m.name);
  response->add_versions(std::to_string(m.version));
  response->set_platform(m.config.platform());
  auto* input = response->add_inputs();
  AddTensorMetadata(m.model->input(), input);
  if (m.accepts_images) {
    const image::PreprocessSpec& p = m.preprocess;
    SetString(input, "image_datatype", "BYTES");
    SetString(input, "image_formats", "JPEG,PNG");
    std::string steps = p.channels == 1 ? "GRAY" : p.bgr ? "BGR" : "RGB";
    if (p.resize_shorter > 0) absl::StrAppend(&steps, " resize_shorter=", p.resize_shorter);
    absl::StrAppend(&steps, p.resize_shorter > 0 || p.crop_only ? " center_crop=" : " resize=", p.height,
                    "x", p.width, p.nearest ? " nearest" : " bilinear", " scale=", p.scale);
    if (p.mean != std::array<float, 3>{0, 0, 0} || p.std != std::array<float, 3>{1, 1, 1}) {
      absl::StrAppend(&steps, " mean=", absl::StrJoin(absl::MakeSpan(p.mean.data(), p.channels), ","),
                      " std=", absl::StrJoin(absl::MakeSpan(p.std.data(), p.channels), ","));
    }
    SetString(input, "image_preprocessing", steps);
  }
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
  auto* reactor = new CancellableReactor();
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
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kInference); !s.ok()) {
      finish(s, 0, {}, {});
      return reactor;
    }
  }
  if (drain_->Refuse()) {
    finish(absl::UnavailableError("the server is shutting down"), 0, {}, {});
    return reactor;
  }
  if (!found.ok()) {
    finish(found.status(), 0, {}, {});
    return reactor;
  }
  std::shared_ptr<const ServedModel> m = *std::move(found);
  // Refuse a request the queue cannot take before decoding its images or
  // copying its tensor: under overload that work would be thrown away.
  if (request->inputs_size() > 0 && request->inputs(0).shape_size() > 0) {
    absl::Status admissible = m->batcher->Precheck(
        request->inputs(0).shape(0), RequestDeadline(*context, m->default_timeout()));
    if (!admissible.ok()) {
      finish(admissible, 0, {}, {});
      return reactor;
    }
  }
  // Images are only split here; the batcher's worker decodes them.
  auto input = DecodeInferInput(*request, m->model->input(),
                                m->accepts_images ? &m->preprocess : nullptr, /*defer_images=*/true);
  absl::Status valid = input.status();
  if (valid.ok()) valid = ResolveRequestedOutputs(*request, m->model->outputs()).status();
  if (!valid.ok()) {
    finish(valid, 0, {}, {});
    return reactor;
  }
  const int64_t items = input->items;
  std::vector<float> data = std::move(input->data);
  const ServedModel* model = m.get();
  std::function<absl::Status(int64_t, float*)> decode_item;
  if (!input->images.empty()) {
    // The views point into `request`, which lives until the RPC finishes.
    decode_item = [in = std::make_shared<DecodedInput>(*std::move(input)), model](int64_t i, float* out) {
      return DecodeImageItem(*in, i, model->preprocess, out);
    };
  } else {
    metrics->preprocess_duration->Observe(absl::ToDoubleSeconds(absl::Now() - arrived));
  }
  reactor->set_on_cancel(DropQueuedOnCancel(m));  // its queue slot comes back at once
  SubmitInfer(std::move(m), items, std::move(data),
              RequestDeadline(*context, model->default_timeout()),
              [context] { return context->IsCancelled(); },
              [model, request, response, items, finish](
                  absl::StatusOr<std::vector<engine::Tensor>> out, absl::Duration queued,
                  absl::Duration compute) {
                absl::Status status = out.status();
                if (status.ok()) {
                  response->set_model_name(model->name);
                  response->set_model_version(std::to_string(model->version));
                  response->set_id(request->id());
                  status = EncodeInferOutputs(*request, model->model->outputs(), *out,
                                              model->labels, response);
                }
                finish(status, items, queued, compute);
              },
              std::move(decode_item));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(
    grpc::CallbackServerContext* context, const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kControl); !s.ok()) return Finish(context, s);
  }
  if (absl::Status s = CheckRepositoryName(*repository_, request->repository_name()); !s.ok()) {
    return Finish(context, s);
  }
  for (const ModelRepository::IndexEntry& e : repository_->Index(request->ready())) {
    auto* m = response->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    grpc::CallbackServerContext* context, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kControl); !s.ok()) return Finish(context, s);
  }
  if (absl::Status s = CheckRepositoryName(*repository_, request->repository_name()); !s.ok()) {
    return Finish(context, s);
  }
  if (!request->parameters().empty()) {
    return Finish(context, absl::InvalidArgumentError(absl::StrCat(
                               "load parameter '", request->parameters().begin()->first,
                               "' is not supported; cnnserve loads a model from its directory "
                               "(edit config.pbtxt or add a version there)")));
  }
  if (drain_->Refuse()) return Finish(context, absl::UnavailableError("the server is shutting down"));
  return Finish(context, repository_->Load(request->model_name()));
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    grpc::CallbackServerContext* context, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  if (auth_ != nullptr) {
    if (absl::Status s = Authorize(*context, *auth_, Access::kControl); !s.ok()) return Finish(context, s);
  }
  if (absl::Status s = CheckRepositoryName(*repository_, request->repository_name()); !s.ok()) {
    return Finish(context, s);
  }
  for (const auto& [key, value] : request->parameters()) {
    if (key != "unload_dependents") {  // no ensembles: there are no dependents
      return Finish(context, absl::InvalidArgumentError(absl::StrCat(
                                 "unload parameter '", key,
                                 "' is not supported; only 'unload_dependents' is")));
    }
  }
  return Finish(context, repository_->Unload(request->model_name()));
}

}  // namespace cnnserve::server
