// The HTTP side of the server (civetweb): health endpoints for load
// balancers and Kubernetes probes. Only these paths exist; others are 404.
//   GET /v2/health/live   200 while the process serves
//   GET /v2/health/ready  200 when every model is ready and the server is
//                         not draining, else 503
// Prometheus /metrics and per-model readiness come with the observability issue.
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
    std::function<bool()> ready;  // called from civetweb's threads
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
