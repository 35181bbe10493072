#include "server/infer_task.h"

#include <utility>

#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace cnnserve::server {

void InferTask::Fail(const absl::Status& status) {
  if (metrics != nullptr) metrics->queue_depth->Decrement();
  done(status);
}

void RunInferBatch(const engine::Model& model, engine::ExecutionContext& context,
                   const ModelMetrics& metrics, std::vector<std::unique_ptr<BatchTask>> batch) {
  std::vector<InferTask*> tasks;
  int64_t items = 0;
  const absl::Time start = absl::Now();
  for (auto& t : batch) {
    tasks.push_back(static_cast<InferTask*>(t.get()));
    items += tasks.back()->items;
    tasks.back()->queued = start - tasks.back()->enqueued;
    metrics.queue_duration->Observe(absl::ToDoubleSeconds(tasks.back()->queued));
    metrics.queue_depth->Decrement();
  }
  metrics.batch_size->Observe(static_cast<double>(items));
  std::vector<float> input;
  if (tasks.size() == 1) {
    input = std::move(tasks[0]->input);
  } else {
    for (InferTask* t : tasks) input.insert(input.end(), t->input.begin(), t->input.end());
  }
  std::vector<engine::Tensor> outputs;
  absl::Status status = model.Run(context, items, input, &outputs);
  const absl::Duration compute = absl::Now() - start;
  metrics.compute_duration->Observe(absl::ToDoubleSeconds(compute));
  for (InferTask* t : tasks) t->compute = compute;
  if (!status.ok()) {
    for (InferTask* t : tasks) t->done(status);
    return;
  }
  int64_t offset = 0;
  for (InferTask* t : tasks) {
    std::vector<engine::Tensor> mine;
    for (const engine::Tensor& out : outputs) {
      const int64_t per_item = engine::ItemElements(out.shape);
      engine::Tensor slice;
      slice.shape = out.shape;
      slice.shape[0] = t->items;
      slice.data.assign(out.data.begin() + offset * per_item,
                        out.data.begin() + (offset + t->items) * per_item);
      mine.push_back(std::move(slice));
    }
    offset += t->items;
    t->done(std::move(mine));
  }
}

}  // namespace cnnserve::server
