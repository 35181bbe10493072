#include "server/clock.h"

#include <algorithm>

namespace cnnserve::server {
namespace {

class Real final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new Real();
  return clock;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    waiter_mutexes_.push_back(mu);
  }
  struct Args {
    const FakeClock* clock;
    const absl::Condition* cond;
    absl::Time deadline;
  } args{this, &cond, deadline};
  // Advance() locks and unlocks `mu`, which makes absl re-evaluate this.
  mu->Await(absl::Condition(
      +[](Args* a) { return a->cond->Eval() || a->clock->Now() >= a->deadline; }, &args));
  {
    absl::MutexLock lock(&mu_);
    waiter_mutexes_.erase(std::find(waiter_mutexes_.begin(), waiter_mutexes_.end(), mu));
  }
  return cond.Eval();
}

void FakeClock::Advance(absl::Duration d) {
  std::vector<absl::Mutex*> waiters;
  {
    absl::MutexLock lock(&mu_);
    now_ += d;
    waiters = waiter_mutexes_;
  }
  for (absl::Mutex* m : waiters) {
    m->Lock();
    m->Unlock();
  }
}

}  // namespace cnnserve::server
