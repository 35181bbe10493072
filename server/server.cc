#include "server/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/model.h"
#include "engine/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/classifier_service.h"
#include "server/http_server.h"
#include "server/inference_service.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/model_repository.h"

namespace cnnserve::server {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  auto server = std::unique_ptr<Server>(new Server());
  server->options_ = options;
  server->metrics_ = std::make_unique<Metrics>(CNNSERVE_VERSION, engine::OneDnnVersion(),
                                               grpc::Version());
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be at least 1, got ", options.max_batch_size));
  }
  if (options.max_message_bytes < 1024 || options.max_message_bytes > (int64_t{2} << 30) - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_bytes must be from 1024 to 2 GiB - 1, got ", options.max_message_bytes));
  }
  ModelRepository::Options repo_options;
  repo_options.root = options.model_repository;
  ASSIGN_OR_RETURN(repo_options.control_mode, ParseModelControlMode(options.model_control_mode));
  repo_options.startup_models = options.load_models;
  repo_options.defaults.max_batch_size = options.max_batch_size;
  repo_options.metrics = server->metrics_.get();
  // grpc.health.v1.Health follows each model: "" is the server, each model
  // has its own service name. Set once the gRPC server exists.
  Server* self = server.get();
  repo_options.on_readiness = [self](const std::string& model, bool ready) {
    absl::MutexLock lock(&self->health_mu_);
    if (self->health_ == nullptr) return;
    self->health_->SetServingStatus(model, ready);
    self->health_->SetServingStatus("", self->inference_->Ready());
  };
  ASSIGN_OR_RETURN(server->repository_, ModelRepository::Create(repo_options));
  server->inference_ = std::make_unique<InferenceService>(
      server->repository_.get(), server->metrics_.get(), options.access_log);
  server->classifier_ =
      std::make_unique<ClassifierService>(server->repository_.get(), server->metrics_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.grpc_port),
                           grpc::InsecureServerCredentials(), &server->grpc_port_);
  builder.RegisterService(server->inference_.get());
  builder.RegisterService(server->classifier_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", options.host, ":", options.grpc_port));
  }
  {
    absl::MutexLock lock(&server->health_mu_);
    server->health_ = server->grpc_->GetHealthCheckService();
    server->health_->SetServingStatus("", false);  // not ready until the models have loaded
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

  server->repository_->LoadAll();
  {
    absl::MutexLock lock(&server->health_mu_);
    server->health_->SetServingStatus("", server->inference_->Ready());
  }
  if (server->repository_->control_mode() == ModelControlMode::kPoll) {
    server->poller_ = std::thread([self] {
      while (!self->stop_polling_.WaitForNotificationWithTimeout(self->options_.repository_poll)) {
        self->repository_->Poll();
      }
    });
  }
  return server;
}

int Server::http_port() const { return http_ ? http_->port() : 0; }

void Server::Shutdown() {
  if (grpc_ == nullptr) return;
  inference_->SetDraining();
  classifier_->SetDraining();
  if (poller_.joinable()) {
    stop_polling_.Notify();
    poller_.join();
  }
  // Every health service turns NOT_SERVING, so probes stop routing to us.
  {
    absl::MutexLock lock(&health_mu_);
    health_->Shutdown();
    health_ = nullptr;
  }
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
