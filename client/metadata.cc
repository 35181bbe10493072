#include "client/metadata.h"

#include <chrono>

#include "absl/strings/str_join.h"
#include "client/grpc_error.h"
#include "engine/status_macros.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace cnnserve::client {
namespace {

std::string Dims(const google::protobuf::RepeatedField<int64_t>& shape) {
  return "[" + absl::StrJoin(shape, ",") + "]";
}

}  // namespace

absl::Status Metadata(const std::shared_ptr<grpc::Channel>& channel, const std::string& model,
                      const std::string& version, bool json, std::ostream& out) {
  if (model.empty()) return absl::InvalidArgumentError("metadata needs a model name");
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelMetadataRequest request;
  request.set_name(model);
  request.set_version(version);
  inference::ModelMetadataResponse meta;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  RETURN_IF_ERROR(FromGrpc("ModelMetadata", stub->ModelMetadata(&context, request, &meta)));
  if (json) {
    auto tensors = [](const auto& list) {
      std::string s;
      for (const auto& t : list) {
        std::string params;
        for (const auto& [k, v] : t.parameters()) {
          params += (params.empty() ? "" : ",") + std::string("\"") + k + "\":\"" + v.string_param() + "\"";
        }
        s += (s.empty() ? "" : ",") + std::string("{\"name\":\"") + t.name() + "\",\"datatype\":\"" +
             t.datatype() + "\",\"shape\":" + Dims(t.shape()) + ",\"parameters\":{" + params + "}}";
      }
      return "[" + s + "]";
    };
    out << "{\"name\":\"" << meta.name() << "\",\"versions\":[\""
        << absl::StrJoin(meta.versions(), "\",\"") << "\"],\"platform\":\"" << meta.platform()
        << "\",\"inputs\":" << tensors(meta.inputs()) << ",\"outputs\":" << tensors(meta.outputs())
        << "}\n";
    return absl::OkStatus();
  }
  out << "model     " << meta.name() << "\nversions  " << absl::StrJoin(meta.versions(), ", ")
      << "\nplatform  " << meta.platform() << "\n";
  for (const auto& t : meta.inputs()) {
    out << "input     " << t.name() << " " << t.datatype() << " " << Dims(t.shape()) << "\n";
    // cnnserve says when an input also takes encoded images, and how it
    // preprocesses them.
    auto param = [&t](const char* key) -> std::string {
      auto it = t.parameters().find(key);
      return it == t.parameters().end() ? "" : it->second.string_param();
    };
    if (!param("image_datatype").empty()) {
      out << "images    " << param("image_formats") << " as " << param("image_datatype") << " [N]: "
          << param("image_preprocessing") << "\n";
    }
  }
  for (const auto& t : meta.outputs()) {
    out << "output    " << t.name() << " " << t.datatype() << " " << Dims(t.shape()) << "\n";
  }
  return absl::OkStatus();
}

}  // namespace cnnserve::client
