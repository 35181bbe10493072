// cnnserve-client: talks to a cnnserve (or any KServe v2) server.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/classify.h"
#include "client/health.h"
#include "client/metadata.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, server, "localhost:8001", "gRPC address of the server, HOST:PORT");
ABSL_FLAG(std::string, model, "", "classify: model name");
ABSL_FLAG(std::string, version, "", "classify: model version (default: the server's)");
ABSL_FLAG(int, top_k, 5, "classify: classes to print per image");
ABSL_FLAG(int, batch, 1, "classify: images per request");
ABSL_FLAG(bool, json, false, "classify: print one JSON object per image");

namespace {

constexpr char kUsage[] =
    "cnnserve-client COMMAND [flags]\n"
    "  classify FILE|DIR ... --model=M [--version=V] [--top_k=5] [--batch=N] [--json]\n"
    "  health\n"
    "  metadata MODEL [--version=V] [--json]\n"
    "Common flags: --server=HOST:PORT (default localhost:8001)";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  const std::string command = positional[1];
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials());
  absl::Status status;
  if (command == "classify") {
    cnnserve::client::ClassifyOptions options;
    options.model = absl::GetFlag(FLAGS_model);
    options.version = absl::GetFlag(FLAGS_version);
    options.top_k = absl::GetFlag(FLAGS_top_k);
    options.batch = absl::GetFlag(FLAGS_batch);
    options.json = absl::GetFlag(FLAGS_json);
    options.paths.assign(positional.begin() + 2, positional.end());
    status = cnnserve::client::Classify(channel, options, std::cout);
  } else if (command == "health") {
    status = cnnserve::client::Health(channel, std::cout);
  } else if (command == "metadata") {
    status = positional.size() == 3
                 ? cnnserve::client::Metadata(channel, positional[2], absl::GetFlag(FLAGS_version),
                                              absl::GetFlag(FLAGS_json), std::cout)
                 : absl::InvalidArgumentError("usage: cnnserve-client metadata MODEL");
  } else {
    std::cerr << "unknown command '" << command << "'\n" << kUsage << "\n";
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
