#include "server/grpc_status.h"

#include <chrono>
#include <string>

namespace cnnserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  constexpr size_t kMaxMessage = 1024;
  std::string message(status.message().substr(0, kMaxMessage));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

absl::Time RequestDeadline(const grpc::CallbackServerContext& context,
                           absl::Duration default_timeout) {
  const auto deadline = context.deadline();
  const auto now = std::chrono::system_clock::now();
  // No deadline reads as a time far in the future (gRPC's infinite future).
  if (deadline < now + std::chrono::hours(24 * 365)) return absl::FromChrono(deadline);
  if (default_timeout > absl::ZeroDuration()) return absl::Now() + default_timeout;
  return absl::InfiniteFuture();
}

}  // namespace cnnserve::server
