// TlsHttpListener: HTTPS for the health and metrics port, on OpenSSL
// directly. Debian 12's civetweb loads OpenSSL by name at run time and looks
// up SSL_get_peer_certificate, which OpenSSL 3 no longer exports (a macro
// now), then calls the null pointer on the first TLS connection; so with
// --tls_cert, HttpServer serves through this listener instead.
//
// Deliberately small, for probes and scrapers: one request per connection
// (the response says Connection: close), the request line and headers at
// most 8 KiB, 10 s for the handshake and the request, four worker threads,
// and at most 64 accepted connections waiting for one (more are closed at
// once). TLS 1.2 or later; no client certificate is asked for.
#ifndef CNNSERVE_SERVER_TLS_HTTP_LISTENER_H_
#define CNNSERVE_SERVER_TLS_HTTP_LISTENER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

struct ssl_ctx_st;

namespace cnnserve::server {

class TlsHttpListener {
 public:
  // The whole HTTP response (status line, headers, body) to a request.
  // Called from the worker threads. `path` excludes any query string.
  using Handler = std::function<std::string(const std::string& method, const std::string& path)>;

  // Listens on host:port (0: a free port) with the PEM certificate chain
  // and key; INVALID_ARGUMENT naming the file if they do not load or match,
  // UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<TlsHttpListener>> Start(const std::string& host, int port,
                                                                const std::string& cert_path,
                                                                const std::string& key_path,
                                                                Handler handler);
  ~TlsHttpListener();  // stops accepting, finishes the connections taken, joins

  int port() const { return port_; }

  static constexpr int kWorkers = 4;
  static constexpr size_t kMaxWaiting = 64;
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr int kTimeoutSeconds = 10;

 private:
  explicit TlsHttpListener(Handler handler) : handler_(std::move(handler)) {}
  void AcceptLoop();
  void WorkLoop();
  void Serve(int fd);

  Handler handler_;
  ssl_ctx_st* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  std::deque<int> waiting_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_TLS_HTTP_LISTENER_H_
