#include "server/infer_task.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace cnnserve::server {

void InferTask::Fail(const absl::Status& status) {
  if (metrics != nullptr) metrics->queue_depth->Decrement();
  done(status);
}

namespace {

// Fills the input of every task with decode_item, items in parallel on
// `threads`. A task whose item fails is answered with the first error and
// removed from *tasks.
void DecodeInputs(int64_t per_item, int threads, const ModelMetrics& metrics,
                  std::vector<InferTask*>* tasks) {
  std::vector<std::pair<InferTask*, int64_t>> work;
  for (InferTask* t : *tasks) {
    if (!t->decode_item) continue;
    t->input.resize(t->items * per_item);
    for (int64_t i = 0; i < t->items; ++i) work.emplace_back(t, i);
  }
  if (work.empty()) return;
  const absl::Time start = absl::Now();
  const int n = static_cast<int>(work.size());
  std::vector<absl::Status> status(n);
#pragma omp parallel for num_threads(std::max(1, std::min(threads, n))) schedule(dynamic, 1)
  for (int j = 0; j < n; ++j) {
    auto [t, i] = work[j];
    try {  // no exception may leave an OpenMP region
      status[j] = t->decode_item(i, t->input.data() + i * per_item);
    } catch (const std::exception& e) {
      status[j] = absl::ResourceExhaustedError(absl::StrCat("decoding the input failed: ", e.what()));
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<InferTask*> failed;
  for (int j = 0; j < n; ++j) {
    InferTask* t = work[j].first;
    if (!status[j].ok() && (failed.empty() || failed.back() != t)) {
      failed.push_back(t);
      t->done(status[j]);
    }
    if (work[j].second == 0) metrics.preprocess_duration->Observe(seconds);
  }
  tasks->erase(std::remove_if(tasks->begin(), tasks->end(),
                              [&](InferTask* t) {
                                return std::find(failed.begin(), failed.end(), t) != failed.end();
                              }),
               tasks->end());
}

}  // namespace

void RunInferBatch(const engine::Model& model, engine::ExecutionContext& context,
                   const ModelMetrics& metrics, std::vector<std::unique_ptr<BatchTask>> batch) {
  std::vector<InferTask*> tasks;
  const absl::Time start = absl::Now();
  for (auto& t : batch) {
    tasks.push_back(static_cast<InferTask*>(t.get()));
    tasks.back()->queued = start - tasks.back()->enqueued;
    metrics.queue_duration->Observe(absl::ToDoubleSeconds(tasks.back()->queued));
    metrics.queue_depth->Decrement();
  }
  DecodeInputs(engine::ItemElements(model.input().shape), context.threads(), metrics, &tasks);
  if (tasks.empty()) return;
  int64_t items = 0;
  for (InferTask* t : tasks) items += t->items;
  metrics.batch_size->Observe(static_cast<double>(items));
  const absl::Time run_start = absl::Now();
  std::vector<float> input;
  if (tasks.size() == 1) {
    input = std::move(tasks[0]->input);
  } else {
    for (InferTask* t : tasks) input.insert(input.end(), t->input.begin(), t->input.end());
  }
  std::vector<engine::Tensor> outputs;
  absl::Status status = model.Run(context, items, input, &outputs);
  const absl::Duration compute = absl::Now() - run_start;
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
