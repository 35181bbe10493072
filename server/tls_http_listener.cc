#include "server/tls_http_listener.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/log.h"

namespace cnnserve::server {
namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// A listening socket on host:port, or -1.
int Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* addrs = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &addrs) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = addrs; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addrs);
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsHttpListener>> TlsHttpListener::Start(
    const std::string& host, int port, const std::string& cert_path, const std::string& key_path,
    Handler handler) {
  // A peer that closes mid-response must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  auto self = std::unique_ptr<TlsHttpListener>(new TlsHttpListener(std::move(handler)));
  self->ctx_ = SSL_CTX_new(TLS_server_method());
  if (self->ctx_ == nullptr) return absl::InternalError("SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(self->ctx_, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(self->ctx_, cert_path.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPS: cannot load the certificate chain from '", cert_path, "' (want PEM): ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(self->ctx_, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("HTTPS: cannot load the private key from '",
                                                   key_path, "' (want PEM): ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(self->ctx_) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("HTTPS: the key in '", key_path,
                                                   "' does not match the certificate in '",
                                                   cert_path, "'"));
  }
  self->listen_fd_ = Listen(host, port);
  if (self->listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTPS on ", host, ":", port, ": ",
                                               std::strerror(errno)));
  }
  self->port_ = BoundPort(self->listen_fd_);
  for (int i = 0; i < kWorkers; ++i) self->workers_.emplace_back([s = self.get()] { s->WorkLoop(); });
  self->acceptor_ = std::thread([s = self.get()] { s->AcceptLoop(); });
  return self;
}

TlsHttpListener::~TlsHttpListener() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  for (std::thread& w : workers_) w.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

void TlsHttpListener::AcceptLoop() {
  pollfd p{listen_fd_, POLLIN, 0};
  while (!stopping_) {
    if (poll(&p, 1, /*timeout_ms=*/100) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    absl::MutexLock lock(&mu_);
    if (waiting_.size() >= kMaxWaiting) {
      close(fd);  // busy: the client retries, as for a refused connection
      continue;
    }
    waiting_.push_back(fd);
  }
}

void TlsHttpListener::WorkLoop() {
  while (true) {
    int fd;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](TlsHttpListener* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->done_ || !s->waiting_.empty();
          },
          this));
      if (waiting_.empty()) return;  // done, nothing left
      fd = waiting_.front();
      waiting_.pop_front();
    }
    Serve(fd);
  }
}

void TlsHttpListener::Serve(int fd) {
  timeval timeout{kTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  SSL* ssl = SSL_new(ctx_);
  if (ssl != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
    std::string request;
    char buf[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() <= kMaxRequestBytes) {
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, n);
    }
    std::string response;
    const size_t header_end = request.find("\r\n\r\n");
    const size_t line_end = request.find("\r\n");
    if (header_end != std::string::npos && header_end <= kMaxRequestBytes) {
      std::vector<std::string> parts = absl::StrSplit(request.substr(0, line_end), ' ');
      if (parts.size() == 3 && absl::StartsWith(parts[2], "HTTP/1.") && !parts[1].empty() &&
          parts[1][0] == '/') {
        response = handler_(parts[0], parts[1].substr(0, parts[1].find('?')));
      }
    }
    if (response.empty() && !request.empty()) {
      const std::string body = "a request is one GET line and headers, under 8 KiB\n";
      response = absl::StrCat("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: ",
                              body.size(), "\r\nConnection: close\r\n\r\n", body);
    }
    for (size_t sent = 0; sent < response.size();) {
      const int n = SSL_write(ssl, response.data() + sent, static_cast<int>(response.size() - sent));
      if (n <= 0) break;
      sent += n;
    }
    SSL_shutdown(ssl);
  }
  ERR_clear_error();  // a failed handshake leaves errors on this thread's queue
  if (ssl != nullptr) SSL_free(ssl);
  close(fd);
}

}  // namespace cnnserve::server
