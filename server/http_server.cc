#include "server/http_server.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "civetweb.h"
#include "server/log.h"

namespace cnnserve::server {
namespace {

void Respond(mg_connection* conn, int code, const std::string& body,
             const char* type = "text/plain; charset=utf-8") {
  const char* reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Service Unavailable";
  mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
            code, reason, type, body.size());
  mg_write(conn, body.data(), body.size());
}

}  // namespace

int HttpServer::HandleRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  auto* self = static_cast<HttpServer*>(info->user_data);
  const std::string path = info->local_uri != nullptr ? info->local_uri : "";
  const bool get = std::strcmp(info->request_method, "GET") == 0 ||
                   std::strcmp(info->request_method, "HEAD") == 0;
  std::vector<std::string> parts = absl::StrSplit(path, '/');  // "", "v2", "models", ...
  if (get && path == "/v2/health/live") {
    Respond(conn, 200, "live\n");
  } else if (get && path == "/v2/health/ready") {
    const bool ready = self->options_.ready();
    Respond(conn, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
  } else if (get && path == "/metrics") {
    Respond(conn, 200, self->options_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  } else if (get && parts.size() >= 5 && parts[1] == "v2" && parts[2] == "models" &&
             parts.back() == "ready" &&
             (parts.size() == 5 || (parts.size() == 7 && parts[4] == "versions"))) {
    const std::string version = parts.size() == 7 ? parts[5] : "";
    const int code = self->options_.model_ready_code(parts[3], version);
    Respond(conn, code, code == 200 ? "ready\n" : code == 404 ? "unknown model or version\n"
                                                               : "not ready\n");
  } else {
    Respond(conn, 404, "no such endpoint: " + path + "\n");
  }
  return 1;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options) {
  auto server = std::unique_ptr<HttpServer>(new HttpServer(std::move(options)));
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
  if (context_ != nullptr) mg_stop(context_);
}

}  // namespace cnnserve::server
