// Server: the whole cnnserve process minus main(): the model repository, the
// gRPC services and the HTTP endpoint, started together and stopped in order.
//
// Shutdown(): readiness turns false, the listeners stop taking new calls,
// requests already accepted are answered, then models are unloaded.
#ifndef CNNSERVE_SERVER_SERVER_H_
#define CNNSERVE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class Server;
}

namespace cnnserve::server {

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
    int64_t max_batch_size = 32;
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
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  int grpc_port_ = 0;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_SERVER_H_
