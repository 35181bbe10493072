#include "server/preemption_ticker.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cnnserve::server {
namespace {

timespec Add(timespec t, absl::Duration d) {
  const int64_t ns = t.tv_nsec + absl::ToInt64Nanoseconds(d);
  t.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
  t.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return t;
}

bool Before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

std::atomic<PreemptionTicker*> process_ticker{nullptr};

}  // namespace

PreemptionTicker::PreemptionTicker(absl::Duration period, const std::vector<int>& cpus)
    : period_(period) {
  threads_.reserve(cpus.size());
  for (int cpu : cpus) threads_.emplace_back([this, cpu] { Tick(cpu); });
}

PreemptionTicker::~PreemptionTicker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void PreemptionTicker::BatchStarted() {
  absl::MutexLock lock(&mu_);
  ++running_batches_;
}

void PreemptionTicker::BatchEnded() {
  absl::MutexLock lock(&mu_);
  --running_batches_;
}

int64_t PreemptionTicker::ticks() const {
  absl::MutexLock lock(&mu_);
  return ticks_;
}

int PreemptionTicker::ticking_threads() const {
  absl::MutexLock lock(&mu_);
  return ticking_threads_;
}

void PreemptionTicker::Tick(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // Pinned, its wake-ups happen on that core. Should the kernel refuse
  // (the CPU went offline), the thread still ticks wherever it runs.
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  auto ticking = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_batches_ > 0 || stopping_; };
  for (;;) {
    mu_.LockWhen(absl::Condition(&ticking));
    const bool stop = stopping_;
    if (!stop) ++ticking_threads_;
    mu_.Unlock();
    if (stop) return;
    // Absolute wake-ups keep the period; after a long wait for the core,
    // start again from now rather than tick to catch up.
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    timespec next = Add(now, period_);
    for (;;) {
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
      {
        absl::MutexLock lock(&mu_);
        ++ticks_;
        if (running_batches_ == 0 || stopping_) {
          --ticking_threads_;
          break;
        }
      }
      next = Add(next, period_);
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (Before(next, now)) next = Add(now, period_);
    }
  }
}

absl::StatusOr<absl::Duration> ParsePreemptionTick(int64_t micros) {
  if (micros == 0 || (micros >= 100 && micros <= 100'000)) return absl::Microseconds(micros);
  return absl::InvalidArgumentError(absl::StrCat("--preemption_tick_us=", micros,
                                                 ": expected 0 (off) or 100 to 100000 microseconds"));
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

PreemptionTicker* StartProcessPreemptionTicker(absl::Duration period, const std::vector<int>& cpus) {
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  if (process_ticker.load() == nullptr) process_ticker.store(new PreemptionTicker(period, cpus));
  return process_ticker.load();
}

ScopedBatchTicking::ScopedBatchTicking() {
  if (PreemptionTicker* t = process_ticker.load()) t->BatchStarted();
}

ScopedBatchTicking::~ScopedBatchTicking() {
  if (PreemptionTicker* t = process_ticker.load()) t->BatchEnded();
}

}  // namespace cnnserve::server
