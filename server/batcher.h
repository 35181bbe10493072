// Batcher: a per-model dynamic batching scheduler, with the semantics of
// Triton's dynamic batcher.
//
//  - A batch forms when an instance (a worker thread) is free.
//  - It is sent at once when it reaches max_batch_size items, when the next
//    queued task would not fit, or when its item count is one of the
//    preferred sizes (the largest that can be formed). Otherwise it waits at
//    most max_queue_delay_micros after the oldest task was queued, then goes
//    with what it has. A task of N items is never split across batches.
//  - The queue is bounded: Schedule() never blocks, and a full queue is
//    RESOURCE_EXHAUSTED at once.
//  - With a latency SLO (latency_slo_micros > 0) an SloPlanner replaces
//    the queue delay and preferred sizes: batches grow with the load, wait
//    only as long as the oldest request's SLO allows, and a request that
//    would finish past its SLO or deadline is shed (RESOURCE_EXHAUSTED) at
//    once. See slo_planner.h.
//  - A task whose deadline passes in the queue is failed with
//    DEADLINE_EXCEEDED, and a cancelled one with CANCELLED; neither is run.
//
// It is generic: it knows tasks (a size in items, a deadline, a cancelled
// flag), batches and a run callback, nothing of gRPC or oneDNN, and takes
// its time from a Clock so that tests drive it with a fake clock.
//
// A full queue first drops its cancelled and expired tasks, so a caller that
// went away never keeps a live request out; DropDead() drops them at once
// when the caller says it has gone. A task already cancelled when it is
// scheduled is refused with CANCELLED.
//
// Thread-safe: Schedule() may be called from any thread. Stop() (and the
// destructor) stops accepting tasks, runs every task already queued without
// waiting for the queue delay, then joins the workers.
#ifndef CNNSERVE_SERVER_BATCHER_H_
#define CNNSERVE_SERVER_BATCHER_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/clock.h"
#include "server/slo_planner.h"

namespace cnnserve::server {

class BatchTask {
 public:
  virtual ~BatchTask() = default;
  // Items this task adds to a batch (the N of its [N, ...] input).
  virtual int64_t size() const = 0;
  // When the caller stops waiting for it, on the batcher's clock.
  virtual absl::Time deadline() const { return absl::InfiniteFuture(); }
  // Whether the caller has gone away; polled when batches are formed.
  virtual bool cancelled() const { return false; }
  // Answers the task without running it. Called at most once, by the
  // batcher, for a task it drops (deadline passed or cancelled).
  virtual void Fail(const absl::Status& status) = 0;
};

class Batcher {
 public:
  struct Options {
    int64_t max_batch_size = 32;              // items, not tasks
    std::vector<int64_t> preferred_batch_sizes = {};  // items; each in [1, max_batch_size]
    int64_t max_queue_delay_micros = 0;       // 0: send whatever is queued at once
    int64_t max_queue_size = 1024;            // tasks waiting, not items
    int instances = 1;                        // worker threads, each with its own runner
    int64_t latency_slo_micros = 0;           // 0: no SLO, batch as configured above
    std::function<void()> on_shed = nullptr;  // per task refused for the SLO; may be empty
    Clock* clock = nullptr;                   // null: the real clock
  };
  // Runs one batch on worker `instance` (0 <= instance < instances). It owns
  // the tasks and must answer each of them, whatever happens.
  using RunBatch =
      std::function<void(int instance, std::vector<std::unique_ptr<BatchTask>> batch)>;

  static absl::StatusOr<std::unique_ptr<Batcher>> Create(const Options& options, RunBatch run);
  ~Batcher();  // Stop()

  // Stops accepting tasks, runs every queued one (without waiting for the
  // queue delay) and joins the workers. Idempotent; not from a worker.
  void Stop();

  // Takes ownership of *task iff it returns OK (then *task is null).
  // INVALID_ARGUMENT if it cannot fit a batch, RESOURCE_EXHAUSTED if the
  // queue is full, UNAVAILABLE once the batcher is stopping, CANCELLED if
  // the task's caller has already gone.
  absl::Status Schedule(std::unique_ptr<BatchTask>* task);
  // Whether a task of `items` with `deadline` would be refused now, asked
  // before the caller spends time building it (decoding its images):
  // RESOURCE_EXHAUSTED, as Schedule would say it, if the queue is full of
  // live tasks or the SLO planner would shed it; OK means only "not
  // refused yet" (Schedule decides). A refusal here counts as an arrival
  // and a shed, as in Schedule.
  absl::Status Precheck(int64_t items, absl::Time deadline);
  // Answers and removes every queued task that is cancelled or past its
  // deadline, now, rather than when a worker or a full queue next looks:
  // for a caller's cancellation, so that its slot is free at once.
  void DropDead();

  int64_t queued_tasks() const;
  // With an SLO: the cost model, arrival rate and batch target now.
  std::optional<SloPlanner::State> slo_state() const;
  // With an SLO: a batch measured outside the scheduler (the warm-up at
  // load), so that planning starts from this machine's costs.
  void SeedCost(int64_t items, absl::Duration took);
  const Options& options() const { return options_; }

  // For tests: blocks until every worker is idle, waiting with nothing it
  // could send at the clock's current time. Never call it while a runner is
  // held busy.
  void AwaitSettledForTest() const;

 private:
  struct Entry {
    std::unique_ptr<BatchTask> task;
    absl::Time enqueued;
    // Expired or cancelled: to be answered and dropped, never run.
    bool Dead(absl::Time now) const { return task->deadline() <= now || task->cancelled(); }
  };
  // How many tasks from the front of the queue to send now (0: wait until
  // *wake or until something changes).
  int64_t PlanLocked(absl::Time now, absl::Time* wake) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropDeadLocked(absl::Time now, std::vector<Entry>* expired,
                      std::vector<Entry>* cancelled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SettledLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status QueueFullError() const;
  // With an SLO: whether the planner admits a task of `items` now.
  absl::Status AdmitLocked(absl::Time now, int64_t items, absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers the tasks DropDeadLocked removed; without mu_.
  void FailDropped(std::vector<Entry>* expired, std::vector<Entry>* cancelled)
      ABSL_LOCKS_EXCLUDED(mu_);

  Batcher(const Options& options, RunBatch run);
  void Work(int instance);

  const Options options_;
  Clock* const clock_;
  const RunBatch run_;
  mutable absl::Mutex mu_;
  std::unique_ptr<SloPlanner> slo_ ABSL_GUARDED_BY(mu_);  // null without an SLO
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every Schedule
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_workers_ ABSL_GUARDED_BY(mu_) = 0;
  int running_workers_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex stop_mu_;  // serialises Stop()
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_BATCHER_H_
