#include "client/repository.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "client/grpc_error.h"
#include "engine/status_macros.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace cnnserve::client {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

absl::Status Models(const std::shared_ptr<grpc::Channel>& channel, bool json, std::ostream& out) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inference::RepositoryIndexResponse index;
  RETURN_IF_ERROR(FromGrpc("RepositoryIndex", stub->RepositoryIndex(&context, {}, &index)));
  if (!json) out << absl::StrFormat("%-24s %-8s %-12s %s\n", "MODEL", "VERSION", "STATE", "REASON");
  for (const auto& m : index.models()) {
    if (json) {
      out << "{\"name\":" << JsonString(m.name()) << ",\"version\":" << JsonString(m.version())
          << ",\"state\":" << JsonString(m.state()) << ",\"reason\":" << JsonString(m.reason())
          << "}\n";
    } else {
      out << absl::StrFormat("%-24s %-8s %-12s %s\n", m.name(), m.version().empty() ? "-" : m.version(),
                             m.state(), m.reason());
    }
  }
  return absl::OkStatus();
}

absl::Status LoadModel(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                       std::ostream& out) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  inference::RepositoryModelLoadRequest request;
  request.set_model_name(model);
  inference::RepositoryModelLoadResponse response;
  RETURN_IF_ERROR(FromGrpc("RepositoryModelLoad", stub->RepositoryModelLoad(&context, request, &response)));
  out << "loaded " << model << "\n";
  return absl::OkStatus();
}

absl::Status UnloadModel(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                         std::ostream& out) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  inference::RepositoryModelUnloadRequest request;
  request.set_model_name(model);
  inference::RepositoryModelUnloadResponse response;
  RETURN_IF_ERROR(FromGrpc("RepositoryModelUnload", stub->RepositoryModelUnload(&context, request, &response)));
  out << "unloaded " << model << "\n";
  return absl::OkStatus();
}

}  // namespace cnnserve::client
