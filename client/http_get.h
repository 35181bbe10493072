// A minimal blocking HTTP/1.0 GET for the load tester's /metrics scrapes:
// "http://HOST:PORT/PATH" only (no TLS, no redirects). Thread-compatible.
#ifndef CNNSERVE_CLIENT_HTTP_GET_H_
#define CNNSERVE_CLIENT_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"

namespace cnnserve::client {

// The body of a 200 answer; UNAVAILABLE if the server cannot be reached,
// FAILED_PRECONDITION for another status, INVALID_ARGUMENT for a bad URL.
absl::StatusOr<std::string> HttpGet(const std::string& url);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_HTTP_GET_H_
