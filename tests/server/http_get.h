// A minimal blocking HTTP/1.0 GET over loopback for tests: status and body.
#ifndef CNNSERVE_TESTS_SERVER_HTTP_GET_H_
#define CNNSERVE_TESTS_SERVER_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace cnnserve::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

inline HttpResponse HttpGet(int port, const std::string& path) {
  HttpResponse out;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return out;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  if (response.size() > 12) out.status = std::stoi(response.substr(9, 3));
  const size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) out.body = response.substr(body + 4);
  return out;
}

}  // namespace cnnserve::testing

#endif  // CNNSERVE_TESTS_SERVER_HTTP_GET_H_
