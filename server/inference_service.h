// The KServe v2 gRPC service (package inference) over a ModelRepository,
// with Triton's model repository extension (RepositoryIndex,
// RepositoryModelLoad, RepositoryModelUnload).
// Inference RPCs (ModelInfer, ModelMetadata) and the control RPCs check the
// AuthPolicy; liveness, readiness and server metadata stay open for probes.
// A thin adapter: it validates and converts messages (tensor_codec), hands
// work to the model's batcher, and answers from the batcher's thread; no
// gRPC thread waits for inference. Repository loads and unloads do block
// their gRPC thread for the load; they are rare.
#ifndef CNNSERVE_SERVER_INFERENCE_SERVICE_H_
#define CNNSERVE_SERVER_INFERENCE_SERVICE_H_

#include "grpc_predict_v2.grpc.pb.h"
#include "server/auth.h"
#include "server/drain_gate.h"
#include "server/metrics.h"
#include "server/model_repository.h"

namespace cnnserve::server {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `repository`, `metrics` and `drain` must outlive the service and every
  // RPC it has accepted. With `access_log`, every ModelInfer is logged.
  // `auth` (may be null: everyone may call) must outlive the service.
  // Once `drain` is closed, readiness is false and new inference and loads
  // are UNAVAILABLE.
  InferenceService(ModelRepository* repository, Metrics* metrics, bool access_log,
                   const AuthPolicy* auth, DrainGate* drain)
      : repository_(repository), metrics_(metrics), access_log_(access_log), auth_(auth),
        drain_(drain) {}

  bool Ready() const { return !drain_->closed() && repository_->AllReady(); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* context,
                                            const inference::RepositoryIndexRequest* request,
                                            inference::RepositoryIndexResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* context, const inference::RepositoryModelLoadRequest* request,
      inference::RepositoryModelLoadResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* context, const inference::RepositoryModelUnloadRequest* request,
      inference::RepositoryModelUnloadResponse* response) override;

 private:
  ModelRepository* repository_;
  Metrics* metrics_;
  const bool access_log_;
  const AuthPolicy* auth_;
  DrainGate* drain_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_INFERENCE_SERVICE_H_
