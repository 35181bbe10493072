// The HTTP side of the server: health endpoints for load balancers and
// Kubernetes probes, and Prometheus metrics, over civetweb, or over HTTPS
// (TlsHttpListener) when a certificate is given. Only these paths exist;
// others are 404.
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

class TlsHttpListener;

class HttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8000;  // 0: the kernel picks a free port
    // PEM files: serve HTTPS with them. Both or neither.
    std::string tls_cert, tls_key;
    // All called from the server's HTTP threads.
    std::function<bool()> ready;
    std::function<int(const std::string& model, const std::string& version)> model_ready_code;
    std::function<std::string()> metrics;
  };

  // Starts serving; UNAVAILABLE if the port cannot be bound,
  // INVALID_ARGUMENT if the certificate or key does not load.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Options options);
  ~HttpServer();  // stops and joins its threads

  int port() const { return port_; }

  // The whole response (status line, headers and, unless HEAD, the body).
  std::string Respond(const std::string& method, const std::string& path) const;

 private:
  explicit HttpServer(Options options);
  static int HandleRequest(::mg_connection* conn);

  Options options_;
  mg_context* context_ = nullptr;
  std::unique_ptr<TlsHttpListener> tls_;
  int port_ = 0;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_HTTP_SERVER_H_
