// Server: the whole cnnserve process minus main(): the model repository, the
// gRPC services and the HTTP endpoint, started together and stopped in order.
//
// Start(): listeners first (liveness answers while models load), then the
// startup models load and warm; Start returns once they have, so the
// server is ready unless a model failed. In poll mode a thread reconciles
// the repository with the disk every repository_poll.
// Shutdown(): readiness turns false and new inference is refused with
// UNAVAILABLE until calls stop arriving (at most half of exit_timeout; see
// drain_gate.h), then the listeners stop, requests already accepted are
// answered, and models are unloaded.
#ifndef CNNSERVE_SERVER_SERVER_H_
#define CNNSERVE_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/drain_gate.h"

namespace grpc {
class HealthCheckServiceInterface;
class Server;
}

namespace cnnserve::server {

struct AuthPolicy;
class ClassifierService;
class HttpServer;
class InferenceService;
class Metrics;
class ModelRepository;

class Server {
 public:
  struct Options {
    std::string model_repository = "models";
    std::string host = "0.0.0.0";
    int grpc_port = 8001;  // 0: the kernel picks a free port
    int http_port = 8000;  // 0: the kernel picks a free port
    int64_t max_batch_size = 32;  // for models whose config does not say
    std::string model_control_mode = "none";  // none, poll or explicit
    std::vector<std::string> load_models;     // explicit mode: loaded at start ("*": all)
    absl::Duration repository_poll = absl::Seconds(15);  // poll mode
    int64_t max_message_bytes = 64 << 20;     // larger requests: RESOURCE_EXHAUSTED
    int64_t max_image_pixels = 64 << 20;      // per decoded image, checked from its header
    // Time a model with instance_group { count: 0 } spends choosing its
    // instances and threads at load (once per machine: the choice is cached).
    absl::Duration autotune_budget = absl::Seconds(10);
    int max_concurrent_streams = 1024;        // per gRPC connection
    // A connection that has not finished its HTTP/2 (and TLS) handshake by
    // then is closed: silent or half-open sockets hold no memory for long.
    absl::Duration handshake_timeout = absl::Seconds(10);
    // Idle connections are pinged this often; one whose peer does not answer
    // within keepalive_timeout (a vanished client) is closed.
    absl::Duration keepalive = absl::Seconds(60);
    absl::Duration keepalive_timeout = absl::Seconds(20);
    // TLS for gRPC (PEM paths); a client CA makes inference and control
    // calls require a client certificate it signed (mTLS).
    std::string tls_cert, tls_key, tls_client_ca;
    std::string auth_token_file;     // bearer token for inference RPCs
    std::string control_token_file;  // bearer token for repository control RPCs
    bool access_log = false;  // log every ModelInfer
    absl::Duration exit_timeout = absl::Seconds(30);
  };

  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options);
  ~Server();  // calls Shutdown()

  int grpc_port() const { return grpc_port_; }
  int http_port() const;
  const ModelRepository& repository() const { return *repository_; }
  const Metrics& metrics() const { return *metrics_; }

  void Shutdown();

 private:
  Server() = default;

  Options options_;
  std::unique_ptr<Metrics> metrics_;
  DrainGate drain_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<ClassifierService> classifier_;
  std::unique_ptr<AuthPolicy> auth_;
  absl::Notification stop_polling_;
  absl::Mutex health_mu_;
  grpc::HealthCheckServiceInterface* health_ ABSL_GUARDED_BY(health_mu_) = nullptr;
  std::thread poller_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  int grpc_port_ = 0;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_SERVER_H_
