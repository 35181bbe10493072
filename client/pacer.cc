#include "client/pacer.h"

namespace cnnserve::client {

Pacer::Pacer(double rate, bool poisson, absl::Time start, uint64_t seed)
    : rate_(rate), poisson_(poisson), start_(start), rng_(seed), gap_(rate) {}

absl::Time Pacer::Next() {
  if (!poisson_) {
    // From the start each time, so rounding never accumulates.
    return start_ + absl::Seconds(static_cast<double>(sent_++) / rate_);
  }
  const absl::Time t = start_ + absl::Seconds(offset_s_);
  offset_s_ += gap_(rng_);
  ++sent_;
  return t;
}

}  // namespace cnnserve::client
