// Who may call: an optional client-certificate requirement (mTLS) and
// optional bearer tokens, one for inference and one for the repository
// control RPCs. Health, liveness, readiness and server metadata stay open
// so that probes need no secret.
//
// Authorize() reads the gRPC context only; thread-safe. UNAUTHENTICATED
// says what is missing, never what the token should have been.
#ifndef CNNSERVE_SERVER_AUTH_H_
#define CNNSERVE_SERVER_AUTH_H_

#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace cnnserve::server {

struct AuthPolicy {
  bool require_client_cert = false;  // set with --tls_client_ca
  std::string inference_token;       // "" : inference needs no token
  std::string control_token;         // "" : control needs no token
};

enum class Access { kInference, kControl };

absl::Status Authorize(const grpc::ServerContextBase& context, const AuthPolicy& policy, Access access);

// The token in a file: its first line, trimmed. INVALID_ARGUMENT when the
// file cannot be read or holds no token.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_AUTH_H_
