// `cnnserve-client metadata MODEL`: the model's versions, platform, inputs
// and outputs (KServe v2 ModelMetadata), as text or --json.
#ifndef CNNSERVE_CLIENT_METADATA_H_
#define CNNSERVE_CLIENT_METADATA_H_

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/channel.h"

namespace cnnserve::client {

absl::Status Metadata(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                      const std::string& version, bool json, std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_METADATA_H_
