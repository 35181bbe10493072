#include "server/auth.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace cnnserve::server {
namespace {

// Compares without an early exit, so timing does not reveal the prefix.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::Status Authorize(const grpc::ServerContextBase& context, const AuthPolicy& policy, Access access) {
  if (policy.require_client_cert) {
    auto auth = context.auth_context();
    if (auth == nullptr || !auth->IsPeerAuthenticated()) {
      return absl::UnauthenticatedError(
          "a client certificate signed by the server's --tls_client_ca is required");
    }
  }
  const std::string& token = access == Access::kControl ? policy.control_token : policy.inference_token;
  if (token.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "this call needs 'authorization: Bearer <token>' metadata (the ",
        access == Access::kControl ? "control" : "inference", " token)"));
  }
  const std::string presented(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(presented, "Bearer " + token)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the bearer token is not the ", access == Access::kControl ? "control" : "inference", " token"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::InvalidArgumentError("cannot read a token from '" + path + "'");
  }
  std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) return absl::InvalidArgumentError("the token file '" + path + "' is empty");
  return token;
}

}  // namespace cnnserve::server
