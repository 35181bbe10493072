// Batcher: a per-model queue that groups independent tasks into batches and
// hands each batch to a run callback on its own worker thread.
//
// It is generic: it knows tasks (with a size in items), batches and a
// callback, nothing of gRPC or oneDNN, so it is tested with a fake runner.
// Schedule() never blocks: a full queue is RESOURCE_EXHAUSTED at once, a
// stopped batcher UNAVAILABLE. A batch is formed as soon as the worker is
// free, from the tasks queued at that moment, up to max_batch_size items.
// (Delayed batching and preferred sizes come with the scheduler issue.)
//
// Thread-safe: Schedule() may be called from any thread. The destructor
// stops accepting tasks, runs every task already queued, then joins.
#ifndef CNNSERVE_SERVER_BATCHER_H_
#define CNNSERVE_SERVER_BATCHER_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace cnnserve::server {

class BatchTask {
 public:
  virtual ~BatchTask() = default;
  // Items this task adds to a batch (the N of its [N, ...] input).
  virtual int64_t size() const = 0;
};

class Batcher {
 public:
  struct Options {
    int64_t max_batch_size = 32;    // items, not tasks
    int64_t max_queued_tasks = 1024;
  };
  // Runs one batch; called on the worker thread only. It owns the tasks and
  // must complete each of them (answer its caller), whatever happens.
  using RunBatch = std::function<void(std::vector<std::unique_ptr<BatchTask>> batch)>;

  static absl::StatusOr<std::unique_ptr<Batcher>> Create(const Options& options, RunBatch run);
  ~Batcher();

  // Takes ownership of *task iff it returns OK (then *task is null).
  absl::Status Schedule(std::unique_ptr<BatchTask>* task);

  int64_t queued_tasks() const;

 private:
  Batcher(const Options& options, RunBatch run);
  void Work();

  const Options options_;
  const RunBatch run_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<BatchTask>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_BATCHER_H_
