// ServedModel: one loaded version of a model, everything a request needs:
// the engine model, one execution context per instance, the batcher that
// feeds them, the config, labels and image preprocessing.
//
// LoadServedModel builds and warms it; nothing is shared with other
// versions. Shared by pointer between the repository and the requests in
// flight; the repository Stop()s the batcher (draining it) before letting
// go, so the last owner is never a batcher worker.
#ifndef CNNSERVE_SERVER_SERVED_MODEL_H_
#define CNNSERVE_SERVER_SERVED_MODEL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cnnserve/v1/model_config.pb.h"
#include "engine/image/preprocess.h"
#include "engine/model.h"
#include "server/autotune.h"
#include "server/batcher.h"
#include "server/idle_exit_thread.h"
#include "server/metrics.h"

namespace cnnserve::server {

struct ServedModel {
  std::string name;
  int64_t version = 0;
  v1::ModelConfig config;            // complete, defaults filled in
  std::vector<std::string> labels;   // may be empty
  bool accepts_images = false;       // input is [N, 1 or 3, H, W]
  bool outputs_probabilities = false;  // the first output comes from a Softmax
  image::PreprocessSpec preprocess;  // when accepts_images
  std::string fingerprint;           // the files it came from, to spot changes
  ModelMetrics* metrics = nullptr;   // owned by the server's Metrics
  std::unique_ptr<engine::Model> model;
  std::vector<std::unique_ptr<engine::ExecutionContext>> contexts;  // one per instance
  std::optional<TuneChoice> autotune;  // when instance_group { count: 0 }
  // Per instance: where a batch on 2 or more threads runs (null for one
  // thread), so that its OpenMP threads end when the model is idle.
  std::vector<std::unique_ptr<IdleExitThread>> runners;
  // Declared last so it is destroyed first: it drains while the model lives.
  std::unique_ptr<Batcher> batcher;

  int64_t max_batch_size() const { return config.max_batch_size(); }
  absl::Duration default_timeout() const {
    return absl::Microseconds(config.dynamic_batching().default_timeout_micros());
  }
};

struct LoadSpec {
  std::string model_dir;  // <repository>/<model>
  std::string name;
  int64_t version = 0;
  v1::ModelConfig config;  // from ReadModelConfig
  std::string fingerprint;
  Metrics* metrics = nullptr;
  Clock* clock = nullptr;  // null: real
  int64_t max_image_pixels = 64 << 20;
  absl::Duration autotune_budget = absl::Seconds(10);  // instance_group { count: 0 }
};

// Queues one request's `items` on the model's batcher. `done` is called
// exactly once, with this request's rows of every output or the error, and
// with how long it queued and how long its batch computed: from a batcher
// worker, or synchronously if the batcher refuses the request (queue full,
// too many items, unloading). Keeps `model` alive until then. With
// `decode_item`, `input` is empty and is filled on the worker item by item
// (see InferTask::decode_item); whatever it reads must outlive `done`.
using InferDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<engine::Tensor>> outputs,
                                          absl::Duration queued, absl::Duration compute)>;
void SubmitInfer(std::shared_ptr<const ServedModel> model, int64_t items, std::vector<float> input,
                 absl::Time deadline, std::function<bool()> is_cancelled, InferDone done,
                 std::function<absl::Status(int64_t item, float* out)> decode_item = nullptr);

// What an inference RPC runs when its caller cancels: the model's queue
// drops the request at once (Batcher::DropDead). Holds the model weakly:
// the queued task owns it, and a finished RPC need not keep it alive.
std::function<void()> DropQueuedOnCancel(const std::shared_ptr<const ServedModel>& model);

// Loads, checks against the config, creates the instances, warms up every
// instance at the config's warmup batch sizes, and starts the batcher.
// INVALID_ARGUMENT when the config does not fit the model; the engine's
// error when the model cannot be loaded.
absl::StatusOr<std::shared_ptr<ServedModel>> LoadServedModel(const LoadSpec& spec);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_SERVED_MODEL_H_
