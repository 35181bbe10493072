#include "server/server.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/model.h"
#include "engine/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/auth.h"
#include "server/classifier_service.h"
#include "server/http_server.h"
#include "server/inference_service.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/model_repository.h"

namespace cnnserve::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in || s.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError("'" + path + "' is not a readable PEM file");
  }
  return s.str();
}

}  // namespace

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
  auto auth = std::make_unique<AuthPolicy>();
  if (!options.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(auth->inference_token, ReadTokenFile(options.auth_token_file));
  }
  if (!options.control_token_file.empty()) {
    ASSIGN_OR_RETURN(auth->control_token, ReadTokenFile(options.control_token_file));
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!options.tls_client_ca.empty() && options.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
  }
  if (options.max_image_pixels < 1 || options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("max_image_pixels and max_concurrent_streams must be positive");
  }
  auth->require_client_cert = !options.tls_client_ca.empty();
  server->auth_ = std::move(auth);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.tls_cert.empty()) {
    ASSIGN_OR_RETURN(std::string cert, ReadPem(options.tls_cert));
    ASSIGN_OR_RETURN(std::string key, ReadPem(options.tls_key));
    grpc::SslServerCredentialsOptions ssl(
        options.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!options.tls_client_ca.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_client_ca));
    }
    ssl.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(ssl);
  }

  ModelRepository::Options repo_options;
  repo_options.root = options.model_repository;
  ASSIGN_OR_RETURN(repo_options.control_mode, ParseModelControlMode(options.model_control_mode));
  repo_options.startup_models = options.load_models;
  repo_options.defaults.max_batch_size = options.max_batch_size;
  repo_options.max_image_pixels = options.max_image_pixels;
  repo_options.autotune_budget = options.autotune_budget;
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
      server->repository_.get(), server->metrics_.get(), options.access_log, server->auth_.get(),
      &server->drain_);
  server->classifier_ = std::make_unique<ClassifierService>(
      server->repository_.get(), server->metrics_.get(), server->auth_.get(), &server->drain_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.grpc_port),
                           credentials, &server->grpc_port_);
  builder.RegisterService(server->inference_.get());
  builder.RegisterService(server->classifier_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.handshake_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
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
  const DrainGate* drain = &server->drain_;
  const ModelRepository* repository = server->repository_.get();
  const Metrics* metrics = server->metrics_.get();
  http.ready = [inference] { return inference->Ready(); };
  http.model_ready_code = [drain, repository](const std::string& model,
                                                  const std::string& version) {
    auto m = repository->Find(model, version);
    if (!m.ok() && m.status().code() == absl::StatusCode::kNotFound) return 404;
    return m.ok() && !drain->closed() ? 200 : 503;
  };
  http.metrics = [metrics] { return metrics->Serialize(); };
  // With --tls_cert the HTTP port serves HTTPS with the same certificate;
  // it asks for no client certificate (probes and scrapers; no secrets).
  http.tls_cert = options.tls_cert;
  http.tls_key = options.tls_key;
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
  drain_.Close();
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
  // Refuse with UNAVAILABLE until clients stop sending (a call still
  // arriving when gRPC shuts down would end CANCELLED), for at most half
  // of the exit timeout; the rest is for the accepted requests.
  const absl::Time start = absl::Now();
  if (!drain_.AwaitQuiet(absl::Milliseconds(250), start + options_.exit_timeout / 2)) {
    Log(Severity::kWarning, "calls kept arriving while draining; stopping the listeners anyway");
  }
  grpc_->Shutdown(absl::ToChronoTime(start + options_.exit_timeout));  // cancels the rest then
  grpc_.reset();
  http_.reset();
  repository_.reset();  // drains the batchers, then unloads the models
  Log(Severity::kInfo, "server stopped");
}

Server::~Server() { Shutdown(); }

}  // namespace cnnserve::server
