// InferTask: one inference request's items as the batcher carries them, and
// RunInferBatch, which runs a batch of them through an engine::Model.
#ifndef CNNSERVE_SERVER_INFER_TASK_H_
#define CNNSERVE_SERVER_INFER_TASK_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/model.h"
#include "server/batcher.h"
#include "server/metrics.h"

namespace cnnserve::server {

struct InferTask : BatchTask {
  int64_t items = 0;
  std::vector<float> input;  // items x the model's per-item input, row-major
  // When set, `input` is filled on the batcher's worker just before the
  // batch runs, by calling this for each item (in parallel, on the
  // context's threads): images are decoded there, at the batches'
  // priority, rather than on the gRPC threads, and never for a request
  // that is refused or expires in the queue. An error answers this task
  // alone; the rest of the batch runs.
  std::function<absl::Status(int64_t item, float* out)> decode_item;
  absl::Time enqueued;       // when it was scheduled
  absl::Time deadline_at = absl::InfiniteFuture();
  std::function<bool()> is_cancelled;  // may be empty
  const ModelMetrics* metrics = nullptr;  // queue depth; may be null
  // Set by RunInferBatch before `done`: time queued, and the batch's compute time.
  absl::Duration queued;
  absl::Duration compute;
  // Called exactly once, on the batcher's worker, with this task's rows of
  // every model output (or the error that stopped the batch).
  absl::AnyInvocable<void(absl::StatusOr<std::vector<engine::Tensor>>)> done;

  int64_t size() const override { return items; }
  absl::Time deadline() const override { return deadline_at; }
  bool cancelled() const override { return is_cancelled && is_cancelled(); }
  // Leaves the queue (and the queue-depth gauge) unrun, answering `status`.
  void Fail(const absl::Status& status) override;
};

// Decodes the inputs of tasks that have decode_item, then concatenates the
// tasks' inputs, runs them as one batch, and hands each task
// its slice of the outputs. Every task's `done` is called, on error too.
// Records queue time, queue depth, batch size and compute time in `metrics`.
void RunInferBatch(const engine::Model& model, engine::ExecutionContext& context,
                   const ModelMetrics& metrics, std::vector<std::unique_ptr<BatchTask>> batch);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_INFER_TASK_H_
