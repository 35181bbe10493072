#include "server/batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cnnserve::server {

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(const Options& options, RunBatch run) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be at least 1, got ", options.max_batch_size));
  }
  for (int64_t p : options.preferred_batch_sizes) {
    if (p < 1 || p > options.max_batch_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("preferred_batch_size ", p, " must be in [1, max_batch_size ",
                       options.max_batch_size, "]"));
    }
  }
  if (options.max_queue_delay_micros < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_queue_delay_micros must not be negative, got ", options.max_queue_delay_micros));
  }
  if (options.max_queue_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_size must be at least 1, got ", options.max_queue_size));
  }
  if (options.instances < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batcher needs at least 1 instance, got ", options.instances));
  }
  if (options.latency_slo_micros < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "latency_slo_micros must not be negative, got ", options.latency_slo_micros));
  }
  if (!run) return absl::InvalidArgumentError("a batcher needs a run callback");
  return std::unique_ptr<Batcher>(new Batcher(options, std::move(run)));
}

Batcher::Batcher(const Options& options, RunBatch run)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      run_(std::move(run)) {
  if (options_.latency_slo_micros > 0) {
    absl::MutexLock lock(&mu_);
    slo_ = std::make_unique<SloPlanner>(SloPlanner::Options{
        .max_batch_size = options_.max_batch_size,
        .instances = options_.instances,
        .slo = absl::Microseconds(options_.latency_slo_micros)});
  }
  absl::MutexLock lock(&stop_mu_);
  for (int i = 0; i < options_.instances; ++i) workers_.emplace_back([this, i] { Work(i); });
}

Batcher::~Batcher() { Stop(); }

void Batcher::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& w : workers_) w.join();
  workers_.clear();
}

absl::Status Batcher::Schedule(std::unique_ptr<BatchTask>* task) {
  const int64_t size = (*task)->size();
  if (size < 1 || size > options_.max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("a request of ", size,
                                                   " items does not fit max_batch_size ",
                                                   options_.max_batch_size));
  }
  std::vector<Entry> expired, cancelled;
  absl::Status status;
  bool shed = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the model is being unloaded");
    // Its caller went before it was queued: DropDead() may have come and gone.
    if ((*task)->cancelled()) return absl::CancelledError("the request was cancelled before it was queued");
    const absl::Time now = clock_->Now();
    // A full queue first sheds the tasks nobody waits for any more: while
    // every instance is busy the workers cannot, and a cancelled or expired
    // task must not keep a live one out.
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
      DropDeadLocked(now, &expired, &cancelled);
    }
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
      status = QueueFullError();
    } else if (slo_ != nullptr) {
      slo_->OnArrival(now, size);
      status = AdmitLocked(now, size, (*task)->deadline());
      shed = !status.ok();
    }
    if (status.ok()) {
      queue_.push_back(Entry{std::move(*task), now});
      ++generation_;
    }
  }
  FailDropped(&expired, &cancelled);
  if (shed && options_.on_shed) options_.on_shed();
  return status;
}

std::optional<SloPlanner::State> Batcher::slo_state() const {
  absl::MutexLock lock(&mu_);
  if (slo_ == nullptr) return std::nullopt;
  return slo_->state(clock_->Now());
}

void Batcher::SeedCost(int64_t items, absl::Duration took) {
  absl::MutexLock lock(&mu_);
  if (slo_ != nullptr) slo_->Seed(items, took);
}

void Batcher::FailDropped(std::vector<Entry>* expired, std::vector<Entry>* cancelled) {
  for (Entry& e : *expired) {
    e.task->Fail(absl::DeadlineExceededError(absl::StrCat(
        "the request's deadline passed after ",
        absl::FormatDuration(clock_->Now() - e.enqueued), " in the model's queue; it was not run")));
  }
  for (Entry& e : *cancelled) {
    e.task->Fail(absl::CancelledError("the request was cancelled while queued; it was not run"));
  }
  expired->clear();
  cancelled->clear();
}

int64_t Batcher::queued_tasks() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

int64_t Batcher::PlanLocked(absl::Time now, absl::Time* wake) const {
  if (queue_.empty()) return 0;
  if (slo_ != nullptr) {
    SloPlanner::Prefix batch;
    for (const Entry& e : queue_) {
      if (!slo_->Join(now, e.task->size(), slo_->Due(e.enqueued, e.task->deadline()), &batch)) {
        batch.full = true;
        break;
      }
    }
    if (stopping_) return batch.tasks;
    const int64_t n = slo_->Plan(now, batch, wake);
    if (n > 0) return n;
  } else {
    int64_t items = 0, take = 0, preferred = 0;
    bool full = false;
    for (const Entry& e : queue_) {
      if (items + e.task->size() > options_.max_batch_size) {
        full = true;  // the batch cannot grow past this task
        break;
      }
      items += e.task->size();
      ++take;
      const auto& sizes = options_.preferred_batch_sizes;
      if (std::find(sizes.begin(), sizes.end(), items) != sizes.end()) preferred = take;
    }
    if (stopping_) return take;
    if (full || items == options_.max_batch_size) return take;
    if (preferred > 0) return preferred;
    const absl::Time send_by =
        queue_.front().enqueued + absl::Microseconds(options_.max_queue_delay_micros);
    if (now >= send_by) return take;
    *wake = send_by;
  }
  for (const Entry& e : queue_) *wake = std::min(*wake, e.task->deadline());
  return 0;
}

absl::Status Batcher::Precheck(int64_t items, absl::Time deadline) {
  if (items < 1 || items > options_.max_batch_size) return absl::OkStatus();  // Schedule says why
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::OkStatus();
    const absl::Time now = clock_->Now();
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
      // Schedule would first drop the dead; refuse only if there are none.
      const bool any_dead = std::any_of(queue_.begin(), queue_.end(),
                                        [now](const Entry& e) { return e.Dead(now); });
      return any_dead ? absl::OkStatus() : QueueFullError();
    }
    if (slo_ == nullptr) return absl::OkStatus();
    status = AdmitLocked(now, items, deadline);
    if (!status.ok()) slo_->OnArrival(now, items);  // it is load all the same
  }
  if (!status.ok() && options_.on_shed) options_.on_shed();
  return status;
}

void Batcher::DropDead() {
  std::vector<Entry> expired, cancelled;
  {
    absl::MutexLock lock(&mu_);
    DropDeadLocked(clock_->Now(), &expired, &cancelled);
    if (expired.empty() && cancelled.empty()) return;
    ++generation_;  // a waiting worker plans again without them
  }
  FailDropped(&expired, &cancelled);
}

absl::Status Batcher::QueueFullError() const {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the model's queue is full (max_queue_size ", options_.max_queue_size,
      " requests); retry later or raise dynamic_batching.max_queue_size"));
}

absl::Status Batcher::AdmitLocked(absl::Time now, int64_t items, absl::Time deadline) const {
  std::vector<SloPlanner::Queued> queued;
  queued.reserve(queue_.size());
  for (const Entry& e : queue_) queued.push_back({e.task->size(), slo_->Due(e.enqueued, e.task->deadline())});
  return slo_->Admit(now, queued, items, deadline);
}

void Batcher::DropDeadLocked(absl::Time now, std::vector<Entry>* expired,
                             std::vector<Entry>* cancelled) {
  auto dead = [&](Entry& e) {
    if (e.task->deadline() <= now) {
      expired->push_back(std::move(e));
      return true;
    }
    if (e.task->cancelled()) {
      cancelled->push_back(std::move(e));
      return true;
    }
    return false;
  };
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), dead), queue_.end());
}

bool Batcher::SettledLocked() const {
  if (waiting_workers_ != options_.instances) return false;
  const absl::Time now = clock_->Now();
  for (const Entry& e : queue_) {
    if (e.Dead(now)) return false;
  }
  absl::Time wake = absl::InfiniteFuture();
  return PlanLocked(now, &wake) == 0;
}

void Batcher::AwaitSettledForTest() const {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](const Batcher* b) ABSL_NO_THREAD_SAFETY_ANALYSIS { return b->SettledLocked(); }, this));
}

void Batcher::Work(int instance) {
  for (;;) {
    std::vector<Entry> batch, expired, cancelled;
    std::vector<absl::Time> due;  // with an SLO: each task's, for the planner's feedback
    int64_t items = 0;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        const absl::Time now = clock_->Now();
        DropDeadLocked(now, &expired, &cancelled);
        if (!expired.empty() || !cancelled.empty()) break;  // answer them first
        absl::Time wake = absl::InfiniteFuture();
        const int64_t take = PlanLocked(now, &wake);
        if (take > 0) {
          for (int64_t i = 0; i < take; ++i) {
            Entry& e = queue_.front();
            items += e.task->size();
            if (slo_ != nullptr) due.push_back(slo_->Due(e.enqueued, e.task->deadline()));
            batch.push_back(std::move(e));
            queue_.pop_front();
          }
          if (slo_ != nullptr) slo_->OnBatchStart(instance, now, items);
          ++running_workers_;
          break;
        }
        if (queue_.empty() && stopping_) return;
        struct Args {
          const Batcher* batcher;
          int64_t seen;
        } args{this, generation_};
        ++waiting_workers_;
        clock_->AwaitWithDeadline(
            &mu_,
            absl::Condition(
                +[](Args* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                  return a->batcher->stopping_ || a->batcher->generation_ != a->seen;
                },
                &args),
            wake);
        --waiting_workers_;
      }
    }
    FailDropped(&expired, &cancelled);
    if (batch.empty()) continue;
    std::vector<std::unique_ptr<BatchTask>> tasks;
    tasks.reserve(batch.size());
    for (Entry& e : batch) tasks.push_back(std::move(e.task));
    const absl::Time start = clock_->Now();
    run_(instance, std::move(tasks));
    const absl::Time end = clock_->Now();
    const int64_t late = std::count_if(due.begin(), due.end(), [end](absl::Time d) { return d < end; });
    absl::MutexLock lock(&mu_);
    if (slo_ != nullptr) {
      slo_->OnBatchDone(instance, items, end - start, static_cast<int64_t>(due.size()), late);
    }
    --running_workers_;
  }
}

}  // namespace cnnserve::server
