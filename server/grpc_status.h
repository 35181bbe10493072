// The one place an absl::Status becomes a grpc::Status. Codes map one to
// one (both follow google.rpc.Code); long messages are cut to 1 KiB. Also
// the request deadline, the other thing read off a gRPC context.
#ifndef CNNSERVE_SERVER_GRPC_STATUS_H_
#define CNNSERVE_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace cnnserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// When a request's caller stops waiting: its gRPC deadline, else now plus
// `default_timeout` when that is positive, else never.
absl::Time RequestDeadline(const grpc::CallbackServerContext& context,
                           absl::Duration default_timeout);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_GRPC_STATUS_H_
