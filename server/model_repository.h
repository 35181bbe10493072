// ModelRepository: the models a server serves, loaded from a directory laid
// out as Triton's:  <root>/<model>/<version>/model.onnx  plus an optional
// <root>/<model>/labels.txt (one label per class index).
//
// Each model's highest-numbered version is loaded (Triton's default policy,
// latest 1), given a Batcher and one execution context on its worker. A model
// that fails to load is kept in the index, not ready, with the reason; it
// does not stop the others from serving.
//
// Thread-safe: Find() may be called from any thread while the repository
// lives. Destroying it drains every batcher, answering all queued requests.
// Status codes: Find gives NOT_FOUND for an unknown model or version and
// UNAVAILABLE for one that failed to load.
#ifndef CNNSERVE_SERVER_MODEL_REPOSITORY_H_
#define CNNSERVE_SERVER_MODEL_REPOSITORY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model.h"
#include "server/batcher.h"
#include "server/metrics.h"

namespace cnnserve::server {

struct ServedModel {
  std::string name;
  int64_t version = 0;
  std::vector<std::string> labels;  // may be empty
  ModelMetrics* metrics = nullptr;   // owned by the server's Metrics
  std::unique_ptr<engine::Model> model;
  // Declared last so it is destroyed first: it drains while the model lives.
  std::unique_ptr<Batcher> batcher;
};

struct ModelEntry {
  std::string name;
  int64_t version = 0;           // 0 when no version directory was usable
  absl::Status status;           // OK when ready
  std::unique_ptr<ServedModel> served;  // set when ready
};

class ModelRepository {
 public:
  struct Options {
    std::string root;
    Batcher::Options batching;
    Metrics* metrics = nullptr;  // required; must outlive the repository
  };

  // Fails only if `root` is not a readable directory.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Load(const Options& options);

  // version "" means the loaded (latest) version.
  absl::StatusOr<const ServedModel*> Find(const std::string& name,
                                          const std::string& version) const;

  const std::map<std::string, ModelEntry>& entries() const { return entries_; }
  bool AllReady() const;

 private:
  std::map<std::string, ModelEntry> entries_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_MODEL_REPOSITORY_H_
