#include "client/credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"

namespace cnnserve::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in) return absl::InvalidArgumentError("cannot read '" + path + "'");
  return s.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const std::string& tls_ca, const std::string& tls_cert, const std::string& tls_key,
    const std::string& token_file) {
  if (tls_ca.empty()) {
    if (!tls_cert.empty() || !token_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_cert and --token_file need TLS: give --tls_ca (a token is never sent in plaintext)");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  grpc::SslCredentialsOptions ssl;
  auto ca = ReadFile(tls_ca);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!tls_cert.empty()) {
    auto cert = ReadFile(tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(tls_key);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!token_file.empty()) {
    auto token = ReadFile(token_file);
    if (!token.ok()) return token.status();
    std::string line = token->substr(0, token->find('\n'));
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::AccessTokenCredentials(std::string(absl::StripAsciiWhitespace(line))));
  }
  return credentials;
}

}  // namespace cnnserve::client
