// A model's configuration: its config.pbtxt (cnnserve.v1.ModelConfig in
// protobuf text format) read, checked and completed with defaults.
//
// Every error names the file and the line ("models/m/config.pbtxt:4: ...")
// and says what was expected; a missing file is not an error (defaults).
// Checks needing the model itself (channels against the image format) are
// made when the model loads. No state: thread-safe.
#ifndef CNNSERVE_SERVER_MODEL_CONFIG_H_
#define CNNSERVE_SERVER_MODEL_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "cnnserve/v1/model_config.pb.h"

namespace cnnserve::server {

struct ConfigDefaults {
  int64_t max_batch_size = 32;
  int64_t max_queue_size = 1024;
};

// Parses `text` (the contents of `path`, which only names it in errors) for
// the model in directory `model_name`, checks it and fills in the defaults:
// platform, max_batch_size, max_queue_size, one instance group, version
// policy latest 1, warmup [1]. INVALID_ARGUMENT on any error.
absl::StatusOr<v1::ModelConfig> ParseModelConfig(const std::string& text, const std::string& path,
                                                 const std::string& model_name,
                                                 const ConfigDefaults& defaults);

// Reads <model_dir>/config.pbtxt if it exists (else an empty config) and
// parses it as above.
absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& model_dir,
                                                const std::string& model_name,
                                                const ConfigDefaults& defaults);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_MODEL_CONFIG_H_
