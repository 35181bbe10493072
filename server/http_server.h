// The HTTP side of the server (civetweb): health endpoints for load
// balancers and Kubernetes probes, and Prometheus metrics. Only these paths
// exist; others are 404.
//   GET /v2/health/live                         200 while the process serves
//   GET /v2/health/ready                        200 when every model is ready and
//                                               the server is not draining, else 503
//   GET /v2/models/{model}[/versions/{v}]/ready 200 ready, 503 not ready, 404 unknown
//   GET /metrics                                Prometheus text format
#ifndef CNNSERVE_SERVER_HTTP_SERVER_H_
#define CNNSERVE_SERVER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace cnnserve::server {

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8000;  // 0: the kernel picks a free port
    // All called from civetweb's threads.
    std::function<bool()> ready;
    std::function<int(const std::string& model, const std::string& version)> model_ready_code;
    std::function<std::string()> metrics;
  };

  // Starts serving; UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Options options);
  ~HttpServer();  // stops and joins civetweb's threads

  int port() const { return port_; }

 private:
  explicit HttpServer(Options options) : options_(std::move(options)) {}
  static int HandleRequest(::mg_connection* conn);

  Options options_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_HTTP_SERVER_H_
