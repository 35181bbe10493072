// Pacer: when an open-loop load tester sends its next request. Constant
// arrivals are exactly 1/rate apart; Poisson arrivals have exponentially
// distributed gaps of mean 1/rate (a fixed seed makes a run repeatable).
// It only computes times, so tests check its accuracy without a clock.
// Not thread-safe.
#ifndef CNNSERVE_CLIENT_PACER_H_
#define CNNSERVE_CLIENT_PACER_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace cnnserve::client {

class Pacer {
 public:
  // rate > 0 requests per second.
  Pacer(double rate, bool poisson, absl::Time start, uint64_t seed = 1);
  // The scheduled send time of the next request (the first is `start`).
  absl::Time Next();

 private:
  double rate_;
  bool poisson_;
  absl::Time start_;
  int64_t sent_ = 0;
  double offset_s_ = 0;  // Poisson: seconds from start to the next send
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_PACER_H_
