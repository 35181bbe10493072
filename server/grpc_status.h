// The one place an absl::Status becomes a grpc::Status. Codes map one to
// one (both follow google.rpc.Code); long messages are cut to 1 KiB.
#ifndef CNNSERVE_SERVER_GRPC_STATUS_H_
#define CNNSERVE_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace cnnserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_GRPC_STATUS_H_
