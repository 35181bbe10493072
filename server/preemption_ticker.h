// Bounds how long a serving thread can wait behind a batch thread for a
// core. Batch threads run below the serving threads (thread_priority.h),
// but the Linux scheduler (EEVDF, 6.6 and later) decides between the two
// only at a wake-up or at its tick. When a serving thread is preempted by
// another wake-up on its core and then, at the next pick, is not yet
// "eligible", the batch thread gets the core and keeps it until the next
// tick: 4 ms at the common 250 Hz, whatever the batch thread's priority.
// Traced under 2x overload (docs/RELIABILITY.md), those waits made the
// slowest 1% of refusals.
//
// A PreemptionTicker keeps one thread pinned to each CPU the process may
// use. While any batch runs, each wakes every `period`; a wake-up makes the
// kernel pick its core's task again, so such a wait lasts at most about
// `period`. Each wake-up takes ~10 us of the core, and it also delays a
// batch thread, whose OpenMP partner then waits at the next barrier: under
// overload a 2 ms period cost about 1.5% of throughput, 1 ms about 5%.
// While no batch runs, the threads sleep.
#ifndef CNNSERVE_SERVER_PREEMPTION_TICKER_H_
#define CNNSERVE_SERVER_PREEMPTION_TICKER_H_

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cnnserve::server {

class PreemptionTicker {
 public:
  // Starts one thread per CPU in `cpus`. The threads inherit the caller's
  // scheduling policy and nice, so the caller must be a serving thread
  // (not a batch thread). `period` must be positive.
  PreemptionTicker(absl::Duration period, const std::vector<int>& cpus);
  ~PreemptionTicker();  // stops and joins the threads
  PreemptionTicker(const PreemptionTicker&) = delete;
  PreemptionTicker& operator=(const PreemptionTicker&) = delete;

  // A batch starts and ends; the threads tick while any batch runs.
  void BatchStarted();
  void BatchEnded();

  // How many times the threads have woken to tick, over all CPUs.
  int64_t ticks() const;
  // How many threads are ticking now; the others sleep until a batch runs.
  int ticking_threads() const;

 private:
  void Tick(int cpu);

  const absl::Duration period_;
  mutable absl::Mutex mu_;
  int running_batches_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int ticking_threads_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

// --preemption_tick_us: zero (off) or a period of 100 us to 100 ms; else
// InvalidArgument naming the value and the range.
absl::StatusOr<absl::Duration> ParsePreemptionTick(int64_t micros);

// The CPUs this process may run on (sched_getaffinity), ascending.
std::vector<int> AllowedCpus();

// The process's ticker, used by every model's batches. main starts it
// before any model loads; until then ScopedBatchTicking does nothing. A
// second start keeps the first. Returns the process's ticker, which is
// never destroyed: its threads sleep when no batch runs.
PreemptionTicker* StartProcessPreemptionTicker(absl::Duration period, const std::vector<int>& cpus);

// Marks a batch running on the calling thread for the process's ticker.
class ScopedBatchTicking {
 public:
  ScopedBatchTicking();
  ~ScopedBatchTicking();
  ScopedBatchTicking(const ScopedBatchTicking&) = delete;
  ScopedBatchTicking& operator=(const ScopedBatchTicking&) = delete;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_PREEMPTION_TICKER_H_
