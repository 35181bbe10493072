#include "client/http_get.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cnnserve::client {

absl::StatusOr<std::string> HttpGet(const std::string& url) {
  constexpr absl::string_view kScheme = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError("'" + url + "' is not an http://HOST:PORT/PATH URL");
  }
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = hostport.rfind(':');
  const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &addrs) != 0 || addrs == nullptr) {
    return absl::UnavailableError("cannot resolve '" + hostport + "'");
  }
  int fd = -1;
  for (addrinfo* a = addrs; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addrs);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot connect to ", hostport, ": ", strerror(errno)));
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", hostport, "\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("cannot send the request to " + hostport);
  }
  std::string response;
  char buf[16384];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  int status = 0;
  if (response.size() < 12 || header_end == std::string::npos ||
      !absl::SimpleAtoi(response.substr(9, 3), &status)) {
    return absl::UnavailableError("malformed HTTP answer from " + hostport);
  }
  if (status != 200) {
    return absl::FailedPreconditionError(absl::StrCat("GET ", url, " answered ", status));
  }
  return response.substr(header_end + 4);
}

}  // namespace cnnserve::client
