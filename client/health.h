// `cnnserve-client health`: asks the server whether it is live and ready
// (KServe v2 ServerLive / ServerReady) and what gRPC health checking says
// for the server. Fails (UNAVAILABLE) when it is not ready, so it serves
// as a container health check.
#ifndef CNNSERVE_CLIENT_HEALTH_H_
#define CNNSERVE_CLIENT_HEALTH_H_

#include <memory>
#include <ostream>

#include "absl/status/status.h"
#include "grpcpp/channel.h"

namespace cnnserve::client {

absl::Status Health(const std::shared_ptr<grpc::Channel>& channel, std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_HEALTH_H_
