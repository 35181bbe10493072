// `cnnserve-client classify`: sends image files with KServe v2 ModelInfer as a
// BYTES input, for the server to decode and preprocess per the model's
// config, and prints each image's top classes. With --raw (or a server that
// does not take images) it decodes them itself instead: channels, nearest
// resize to the model's H x W, scaled to [0, 1], sent as FP32.
#ifndef CNNSERVE_CLIENT_CLASSIFY_H_
#define CNNSERVE_CLIENT_CLASSIFY_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

namespace cnnserve::client {

struct ClassifyOptions {
  std::string model;
  std::string version;         // "" = the server's loaded version
  int top_k = 5;
  int batch = 1;               // images per request
  bool json = false;           // one JSON object per image instead of a table
  bool raw = false;            // preprocess on the client and send FP32
  std::vector<std::string> paths;  // files or directories of .png/.jpg/.jpeg
};

struct ClassScore {
  int64_t index = 0;
  std::string label;
  float score = 0;  // softmax probability
};

// Expands directories into their image files, sorted; files stay as given.
absl::StatusOr<std::vector<std::string>> ExpandImagePaths(const std::vector<std::string>& paths);

// Turns the classification strings of one item ("score:index[:label]", all
// classes) into the top k classes by softmax probability. Scores that already
// form a distribution (non-negative, summing to 1) are kept as they are.
absl::StatusOr<std::vector<ClassScore>> TopClasses(const std::vector<std::string>& entries, int k);

// Runs the command, printing results to `out`. Errors carry the gRPC code.
absl::Status Classify(const std::shared_ptr<grpc::Channel>& channel,
                      const ClassifyOptions& options, std::ostream& out);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_CLASSIFY_H_
