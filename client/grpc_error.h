// Turns a failed RPC into an absl::Status that keeps the gRPC code and says
// which call failed, e.g. "ModelInfer: NOT_FOUND: unknown model 'x'".
#ifndef CNNSERVE_CLIENT_GRPC_ERROR_H_
#define CNNSERVE_CLIENT_GRPC_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/support/status.h"

namespace cnnserve::client {

inline absl::Status FromGrpc(const std::string& call, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  return absl::Status(code, absl::StrCat(call, ": ", absl::StatusCodeToString(code), ": ",
                                         status.error_message()));
}

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_GRPC_ERROR_H_
