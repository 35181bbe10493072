// The client's channel credentials from its flags: plaintext by default;
// TLS with a CA to verify the server; a client certificate for mTLS; and a
// bearer token, which is only ever sent over TLS.
#ifndef CNNSERVE_CLIENT_CREDENTIALS_H_
#define CNNSERVE_CLIENT_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"

namespace cnnserve::client {

// INVALID_ARGUMENT for an unreadable file, a certificate without its key,
// or a token without TLS.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const std::string& tls_ca, const std::string& tls_cert, const std::string& tls_key,
    const std::string& token_file);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_CREDENTIALS_H_
