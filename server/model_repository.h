// ModelRepository: the models a server serves, from a directory laid out as
// Triton's:
//   <root>/<model>/config.pbtxt        optional (model_config.h)
//   <root>/<model>/labels.txt          optional, one label per class index
//   <root>/<model>/<version>/model.onnx
// A zoo model (platform "zoo") needs no version directory: it is version 1.
//
// Which versions are served follows each config's version_policy. Model
// control (Triton's): kNone loads everything at start and never changes;
// kPoll also reconciles with the disk on every Poll(); kExplicit loads only
// what Load() (RepositoryModelLoad) asks for. A new or changed version is
// loaded and warmed before the version it replaces is unloaded; a failed
// load leaves the serving versions untouched, its reason in Index(); an
// unload drains the requests already queued before the model goes.
//
// Thread-safe. Find(), Index() and AllReady() never wait for a load;
// LoadAll(), Load(), Unload() and Poll() are serialised with each other.
// Find: NOT_FOUND for an unknown model or version, UNAVAILABLE for a model
// loading, unloaded or failed. Load/Unload: INVALID_ARGUMENT for a name that
// is not a plain directory name, NOT_FOUND when the repository has no such
// model, FAILED_PRECONDITION unless the mode is kExplicit.
#ifndef CNNSERVE_SERVER_MODEL_REPOSITORY_H_
#define CNNSERVE_SERVER_MODEL_REPOSITORY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/metrics.h"
#include "server/model_config.h"
#include "server/served_model.h"

namespace cnnserve::server {

enum class ModelControlMode { kNone, kPoll, kExplicit };
absl::StatusOr<ModelControlMode> ParseModelControlMode(const std::string& text);

// INVALID_ARGUMENT unless `name` is a plain directory name: no path
// separators, not "." or "..", no leading dot, printable, at most 255 bytes.
absl::Status ValidateModelName(const std::string& name);

class ModelRepository {
 public:
  struct Options {
    std::string root;
    ModelControlMode control_mode = ModelControlMode::kNone;
    // kExplicit: the models LoadAll() loads ("*": all of them).
    std::vector<std::string> startup_models;
    ConfigDefaults defaults;
    Metrics* metrics = nullptr;  // required; must outlive the repository
    Clock* clock = nullptr;      // for the batchers; null: real
    int64_t max_image_pixels = 64 << 20;  // per decoded image
    absl::Duration autotune_budget = absl::Seconds(10);  // instance_group { count: 0 }
    // Called after a model's readiness may have changed (from the thread
    // that changed it), e.g. to update the gRPC health service.
    std::function<void(const std::string& model, bool ready)> on_readiness;
  };

  struct IndexEntry {
    std::string name;
    std::string version;  // "" when no version is loaded
    std::string state;    // READY, LOADING, UNLOADING, UNAVAILABLE
    std::string reason;   // why it is not READY
  };

  // Checks that `root` is a readable directory; loads nothing yet.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Create(const Options& options);
  ~ModelRepository();  // unloads every model, draining it

  // Loads the startup models: all of them, or in kExplicit mode those of
  // Options::startup_models. A model that fails does not stop the others.
  void LoadAll();

  // version "" means the highest ready version.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Find(const std::string& name,
                                                          const std::string& version) const;

  // Every model directory in the repository and every model known, by name
  // then version; `ready_only` keeps only READY versions.
  std::vector<IndexEntry> Index(bool ready_only) const;

  // Ready: no model is loading, and every model that was asked to load
  // serves at least one version.
  bool AllReady() const;

  // kExplicit: loads a model, or reloads the versions whose files changed.
  // The error of any version that failed (serving versions stay).
  absl::Status Load(const std::string& name);
  // kExplicit: unloads every version of a model, draining each.
  absl::Status Unload(const std::string& name);
  // kPoll: reconciles every model with the disk. No-op in other modes.
  void Poll();

  ModelControlMode control_mode() const { return options_.control_mode; }
  const std::string& root() const { return options_.root; }

 private:
  struct ModelState {
    std::map<int64_t, std::shared_ptr<ServedModel>> ready;  // by version
    struct Failure {
      std::string reason;
      std::string fingerprint;  // of the files that failed, not retried by Poll
    };
    std::map<int64_t, Failure> failed;  // versions that should serve but could not
    std::string error;    // a model-wide failure (bad config, no versions)
    std::string error_fingerprint;
    bool loading = false;
    bool unloading = false;
    bool wanted = false;  // asked to load and not unloaded since
  };

  explicit ModelRepository(Options options) : options_(std::move(options)) {}
  // Makes the served versions of `name` match the disk and its config.
  // With `force`, files that failed before are tried again even if unchanged.
  absl::Status Reconcile(const std::string& name, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ops_mu_);
  void UnloadLocked(const std::string& name, bool forget) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ops_mu_);
  std::vector<std::string> ModelDirs() const;
  void NotifyReadiness(const std::string& name);
  // Drains and releases versions that no longer serve.
  void Retire(std::vector<std::shared_ptr<ServedModel>> models);

  const Options options_;
  absl::Mutex ops_mu_;  // held through a load or unload
  mutable absl::Mutex mu_;
  std::map<std::string, ModelState> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_MODEL_REPOSITORY_H_
