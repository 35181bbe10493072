// Clock: the time source of the batching scheduler, so that tests can drive
// queue delays and deadlines with a fake clock instead of sleeping.
//
// RealClock() is absl::Now() and absl::Mutex's own timed waits. FakeClock
// (for tests) only moves when Advance() is called, and wakes every waiter
// whose deadline it passes. Both are thread-safe.
#ifndef CNNSERVE_SERVER_CLOCK_H_
#define CNNSERVE_SERVER_CLOCK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cnnserve::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // With `mu` held: waits until `cond` holds or Now() reaches `deadline`,
  // whichever is first; returns cond's value. `mu` is held again on return.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline) = 0;
};

// The process-wide real clock; never destroyed.
Clock* RealClock();

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override;
  // Moves time forward and wakes the waiters so they re-check their deadlines.
  // It must not race with the destruction of an object waiting on this clock.
  void Advance(absl::Duration d);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Mutex*> waiter_mutexes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_CLOCK_H_
