#include "server/http_server.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "civetweb.h"
#include "engine/status_macros.h"
#include "server/log.h"
#include "server/tls_http_listener.h"

namespace cnnserve::server {
namespace {

std::string Response(const std::string& method, int code, const std::string& body,
                     const char* type = "text/plain; charset=utf-8") {
  const char* reason = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
                                                                                  : "Service Unavailable";
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      method == "HEAD" ? "" : body);
}

}  // namespace

HttpServer::HttpServer(Options options) : options_(std::move(options)) {}

std::string HttpServer::Respond(const std::string& method, const std::string& path) const {
  if (method != "GET" && method != "HEAD") {
    return Response(method, 405, "only GET and HEAD are served here\n");
  }
  std::vector<std::string> parts = absl::StrSplit(path, '/');  // "", "v2", "models", ...
  if (path == "/v2/health/live") return Response(method, 200, "live\n");
  if (path == "/v2/health/ready") {
    const bool ready = options_.ready();
    return Response(method, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
  }
  if (path == "/metrics") {
    return Response(method, 200, options_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (parts.size() >= 5 && parts[1] == "v2" && parts[2] == "models" && parts.back() == "ready" &&
      (parts.size() == 5 || (parts.size() == 7 && parts[4] == "versions"))) {
    const std::string version = parts.size() == 7 ? parts[5] : "";
    const int code = options_.model_ready_code(parts[3], version);
    return Response(method, code,
                    code == 200 ? "ready\n" : code == 404 ? "unknown model or version\n" : "not ready\n");
  }
  return Response(method, 404, absl::StrCat("no such endpoint: ", path, "\n"));
}

int HttpServer::HandleRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  auto* self = static_cast<HttpServer*>(info->user_data);
  const std::string response =
      self->Respond(info->request_method, info->local_uri != nullptr ? info->local_uri : "");
  mg_write(conn, response.data(), response.size());
  return 1;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options) {
  auto server = std::unique_ptr<HttpServer>(new HttpServer(std::move(options)));
  const Options& o = server->options_;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("HTTPS needs both a certificate and a key");
  }
  if (!o.tls_cert.empty()) {
    HttpServer* self = server.get();
    ASSIGN_OR_RETURN(server->tls_, TlsHttpListener::Start(o.host, o.port, o.tls_cert, o.tls_key,
                                                          [self](const std::string& method,
                                                                 const std::string& path) {
                                                            return self->Respond(method, path);
                                                          }));
    server->port_ = server->tls_->port();
    return server;
  }
  mg_init_library(0);
  const std::string ports = absl::StrCat(server->options_.host, ":", server->options_.port);
  const char* mg_options[] = {"listening_ports", ports.c_str(), "num_threads", "4",
                              "request_timeout_ms", "10000", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.begin_request = &HttpServer::HandleRequest;
  callbacks.log_message = [](const mg_connection*, const char* message) {
    Log(Severity::kWarning, "http", {{"detail", message}});
    return 1;
  };
  server->context_ = mg_start(&callbacks, server.get(), mg_options);
  if (server->context_ == nullptr) {
    return absl::UnavailableError("cannot listen for HTTP on " + ports);
  }
  mg_server_port bound[4];
  const int n = mg_get_server_ports(server->context_, 4, bound);
  server->port_ = n > 0 ? bound[0].port : server->options_.port;
  return server;
}

HttpServer::~HttpServer() {
  tls_.reset();
  if (context_ != nullptr) mg_stop(context_);
}

}  // namespace cnnserve::server
