// SloPlanner: the batcher's policy when a model declares a latency SLO
// (dynamic_batching.latency_slo_micros): how large each batch goes, how long
// it waits, and which requests are shed at once because they would finish
// too late.
//
//  - Cost: a BatchCostModel refitted from every batch measured on this
//    machine (seeded at load), t(b) = fixed + b * per_item.
//  - Size: the smallest batch that keeps up with the arrival rate (an
//    exponentially decaying average over about a second) with 25% headroom:
//    b >= rate_per_instance * t(b). At low load that is 1, so requests go at
//    once; as load grows, batches grow with it, up to max_batch_size.
//  - Cut: a batch takes tasks from the front of the queue while they fit
//    max_batch_size and it would still finish within every one's SLO; a
//    task that would make it too slow starts the next batch instead.
//  - Wait: a batch smaller than that waits for more requests, but never past
//    the latest start that still lets its oldest request finish within its
//    SLO (or its own deadline, if sooner), using a conservative t(b).
//  - Shed: a request whose predicted completion (the queue ahead of it, cut
//    into batches as Join will cut them, on the instances as they come
//    free) is past its SLO or deadline is refused with RESOURCE_EXHAUSTED
//    instead of being computed late. Until the cost model has seen a few
//    batches nothing is shed.
//  - Admission margin: the predicted batch times in that chain are t(b)
//    times a margin set by feedback, not a fixed percentile. Each batch
//    that finishes with a request past its due raises it 10%; each on time
//    lowers it by a small step, so that about 0.5% of batches end late. A
//    fixed per-batch margin compounds along the queue: at 90% load with a
//    p90 margin of 1.25 the chain predicts 112% and sheds requests the
//    instances would have served in time.
//
// The SLO covers queueing and compute, from the moment the request reaches
// the scheduler; 5% of it is left for the rest of the request's path
// (decoding, the network), so plans aim at 95% of it.
//
// Pure policy: no threads, no clock of its own. Not thread-safe; the
// batcher calls it under its mutex, and tests drive it directly in a
// simulation.
#ifndef CNNSERVE_SERVER_SLO_PLANNER_H_
#define CNNSERVE_SERVER_SLO_PLANNER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/batch_cost_model.h"

namespace cnnserve::server {

class SloPlanner {
 public:
  struct Options {
    int64_t max_batch_size = 32;
    int instances = 1;
    absl::Duration slo;  // > 0
  };
  // The tasks at the front of the queue that could form a batch now, as
  // Join builds it.
  struct Prefix {
    int64_t tasks = 0;     // how many
    int64_t items = 0;     // their items
    bool full = false;     // the next queued task would not join
    absl::Time due = absl::InfiniteFuture();  // the earliest of their SLO ends and
                                              // deadlines that the batch can still meet
    absl::Time first_due = absl::InfiniteFuture();  // the earliest of all, met or not
  };
  struct State {
    BatchCostModel::Fit cost;
    bool cost_ready = false;
    double arrivals_per_second = 0;  // items
    int64_t target_batch = 1;
    double admission_margin = 1;  // factor on t(b) in admission's predictions
  };

  explicit SloPlanner(const Options& options);

  // When a task of `items` arrives (admitted or not: it is load either way).
  void OnArrival(absl::Time now, int64_t items);
  // A queued task, as admission sees it.
  struct Queued {
    int64_t items = 0;
    absl::Time due;  // Due(enqueued, deadline)
  };
  // OK to queue a task of `items` behind `queue` (oldest first), or
  // RESOURCE_EXHAUSTED saying why not: it would finish past its SLO or
  // deadline, or, joining their batch, push the tasks queued before it past
  // theirs.
  absl::Status Admit(absl::Time now, const std::vector<Queued>& queue, int64_t items,
                     absl::Time deadline) const;
  // When a task enqueued at `enqueued` with `deadline` must end.
  absl::Time Due(absl::Time enqueued, absl::Time deadline) const;
  // Whether a task of `items` due at `due` may join `batch`, a batch that
  // would start at `start`: it must fit max_batch_size, and the batch must
  // still finish by the due time of every task in it that can still make
  // it (one already late does not hold the batch back). A first task always
  // joins. Adds it to `batch` if so.
  bool Join(absl::Time start, int64_t items, absl::Time due, Prefix* batch) const;
  // How many of the prefix's tasks to send now; 0 means wait until *wake
  // (or until something changes).
  int64_t Plan(absl::Time now, const Prefix& prefix, absl::Time* wake) const;
  // A batch of `items` started on `instance`, or finished after `took`
  // with `late` of its `tasks` past their due time.
  void OnBatchStart(int instance, absl::Time now, int64_t items);
  void OnBatchDone(int instance, int64_t items, absl::Duration took, int64_t tasks, int64_t late);
  // A measurement from outside the scheduler (the load-time warm-up).
  void Seed(int64_t items, absl::Duration took) { cost_.Observe(items, took); }

  State state(absl::Time now) const;
  absl::Duration budget() const { return budget_; }

  static constexpr double kHeadroom = 1.25;
  static constexpr double kShareForQueueAndCompute = 0.95;
  static constexpr absl::Duration kRateWindow = absl::Seconds(1);
  static constexpr double kLateBatchTarget = 0.005;
  static constexpr double kMarginStepUp = 1.10;
  static constexpr double kMaxMargin = 3;

 private:
  double RateAt(absl::Time now) const;
  int64_t TargetBatch(absl::Time now) const;
  // Admission's estimate of a batch of `items`.
  absl::Duration AdmitCost(int64_t items) const { return cost_.Predict(items) * margin_; }

  const Options options_;
  const absl::Duration budget_;
  BatchCostModel cost_;
  double rate_ = 0;  // items per second, as of last_arrival_
  absl::Time last_arrival_ = absl::InfinitePast();
  struct Running {
    absl::Time start;
    int64_t items = 0;  // 0 when idle
  };
  std::vector<Running> running_;  // per instance
  double margin_ = 1;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_SLO_PLANNER_H_
