#include "server/drain_gate.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace cnnserve::server {

void DrainGate::Close() {
  last_refusal_nanos_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  closed_.store(true, std::memory_order_release);
}

bool DrainGate::Refuse() {
  if (!closed()) return false;
  last_refusal_nanos_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  return true;
}

bool DrainGate::AwaitQuiet(absl::Duration quiet, absl::Time deadline) const {
  while (true) {
    const absl::Time quiet_at =
        absl::FromUnixNanos(last_refusal_nanos_.load(std::memory_order_relaxed)) + quiet;
    const absl::Time now = absl::Now();
    if (now >= quiet_at) return true;
    if (now >= deadline) return false;
    absl::SleepFor(std::min(quiet_at, deadline) - now);
  }
}

}  // namespace cnnserve::server
