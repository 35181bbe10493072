// cnnserve-client models / load / unload: the model repository extension
// (RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload).
#ifndef CNNSERVE_CLIENT_REPOSITORY_H_
#define CNNSERVE_CLIENT_REPOSITORY_H_

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/channel.h"

namespace cnnserve::client {

// Prints one line per model version: name, version, state, reason.
absl::Status Models(const std::shared_ptr<grpc::Channel>& channel, bool json, std::ostream& out);
absl::Status LoadModel(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                       std::ostream& out);
absl::Status UnloadModel(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                         std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_REPOSITORY_H_
