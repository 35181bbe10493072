#include "server/batcher.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cnnserve::server {

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(const Options& options, RunBatch run) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be at least 1, got ", options.max_batch_size));
  }
  if (options.max_queued_tasks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queued_tasks must be at least 1, got ", options.max_queued_tasks));
  }
  if (!run) return absl::InvalidArgumentError("a batcher needs a run callback");
  return std::unique_ptr<Batcher>(new Batcher(options, std::move(run)));
}

Batcher::Batcher(const Options& options, RunBatch run)
    : options_(options), run_(std::move(run)), worker_([this] { Work(); }) {}

Batcher::~Batcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  worker_.join();
}

absl::Status Batcher::Schedule(std::unique_ptr<BatchTask>* task) {
  const int64_t size = (*task)->size();
  if (size < 1 || size > options_.max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("a request of ", size,
                                                   " items does not fit max_batch_size ",
                                                   options_.max_batch_size));
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the model is shutting down");
  if (static_cast<int64_t>(queue_.size()) >= options_.max_queued_tasks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model's queue is full (", options_.max_queued_tasks, " requests); retry later"));
  }
  queue_.push_back(std::move(*task));
  return absl::OkStatus();
}

int64_t Batcher::queued_tasks() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void Batcher::Work() {
  for (;;) {
    std::vector<std::unique_ptr<BatchTask>> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Batcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
            return b->stopping_ || !b->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued has run
      int64_t items = 0;
      while (!queue_.empty() && items + queue_.front()->size() <= options_.max_batch_size) {
        items += queue_.front()->size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_(std::move(batch));
  }
}

}  // namespace cnnserve::server
