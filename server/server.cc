#include "server/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "server/http_server.h"
#include "server/inference_service.h"
#include "server/log.h"
#include "server/metrics.h"
#include "engine/model.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/model_repository.h"

namespace cnnserve::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  auto server = std::unique_ptr<Server>(new Server());
  server->options_ = options;
  server->metrics_ = std::make_unique<Metrics>(CNNSERVE_VERSION, engine::OneDnnVersion(),
                                               grpc::Version());
  ModelRepository::Options repo_options;
  repo_options.root = options.model_repository;
  repo_options.batching.max_batch_size = options.max_batch_size;
  repo_options.metrics = server->metrics_.get();
  ASSIGN_OR_RETURN(server->repository_, ModelRepository::Load(repo_options));
  server->inference_ = std::make_unique<InferenceService>(
      server->repository_.get(), server->metrics_.get(), options.access_log);

  // grpc.health.v1.Health, for Kubernetes' gRPC probes: "" is the server,
  // each model has its own service name.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.grpc_port),
                           grpc::InsecureServerCredentials(), &server->grpc_port_);
  builder.RegisterService(server->inference_.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", options.host, ":", options.grpc_port));
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_->GetHealthCheckService();
  health->SetServingStatus(server->inference_->Ready());
  for (const auto& [name, entry] : server->repository_->entries()) {
    health->SetServingStatus(name, entry.status.ok());
  }

  HttpServer::Options http;
  http.host = options.host;
  http.port = options.http_port;
  InferenceService* inference = server->inference_.get();
  const ModelRepository* repository = server->repository_.get();
  const Metrics* metrics = server->metrics_.get();
  http.ready = [inference] { return inference->Ready(); };
  http.model_ready_code = [inference, repository](const std::string& model,
                                                  const std::string& version) {
    auto m = repository->Find(model, version);
    if (!m.ok() && m.status().code() == absl::StatusCode::kNotFound) return 404;
    return m.ok() && !inference->draining() ? 200 : 503;
  };
  http.metrics = [metrics] { return metrics->Serialize(); };
  ASSIGN_OR_RETURN(server->http_, HttpServer::Start(std::move(http)));
  return server;
}

int Server::http_port() const { return http_ ? http_->port() : 0; }

void Server::Shutdown() {
  if (grpc_ == nullptr) return;
  inference_->SetDraining();
  // Every health service turns NOT_SERVING, so probes stop routing to us.
  grpc_->GetHealthCheckService()->Shutdown();
  const auto deadline = std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.exit_timeout);
  grpc_->Shutdown(deadline);  // waits for accepted RPCs, cancels them at the deadline
  grpc_.reset();
  http_.reset();
  repository_.reset();  // drains the batchers, then unloads the models
  Log(Severity::kInfo, "server stopped");
}

Server::~Server() { Shutdown(); }

}  // namespace cnnserve::server
