#include "server/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "server/http_server.h"
#include "server/inference_service.h"
#include "server/log.h"
#include "server/model_repository.h"

namespace cnnserve::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  auto server = std::unique_ptr<Server>(new Server());
  server->options_ = options;
  ModelRepository::Options repo_options;
  repo_options.root = options.model_repository;
  repo_options.batching.max_batch_size = options.max_batch_size;
  ASSIGN_OR_RETURN(server->repository_, ModelRepository::Load(repo_options));
  server->inference_ = std::make_unique<InferenceService>(server->repository_.get());

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
  HttpServer::Options http;
  http.host = options.host;
  http.port = options.http_port;
  InferenceService* inference = server->inference_.get();
  http.ready = [inference] { return inference->Ready(); };
  ASSIGN_OR_RETURN(server->http_, HttpServer::Start(std::move(http)));
  return server;
}

int Server::http_port() const { return http_ ? http_->port() : 0; }

void Server::Shutdown() {
  if (grpc_ == nullptr) return;
  inference_->SetDraining();
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
