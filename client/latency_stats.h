// Latency statistics for the load tester: a set of samples and its
// percentiles by the nearest-rank definition (the smallest sample with at
// least p% of the samples at or below it), so every reported figure is a
// latency some request really had. Not thread-safe.
#ifndef CNNSERVE_CLIENT_LATENCY_STATS_H_
#define CNNSERVE_CLIENT_LATENCY_STATS_H_

#include <cstdint>
#include <vector>

namespace cnnserve::client {

class LatencyStats {
 public:
  void Add(double millis) {
    samples_.push_back(millis);
    sorted_ = false;
  }
  // Adds every sample of `other` (windows merge exactly).
  void Merge(const LatencyStats& other);
  int64_t count() const { return static_cast<int64_t>(samples_.size()); }
  // p in (0, 100]; 0 when there are no samples.
  double Percentile(double p);
  double Max();
  double Mean() const;
  // Samples at or below `millis`.
  int64_t CountAtMost(double millis) const;

 private:
  std::vector<double> samples_;
  bool sorted_ = true;
};

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_LATENCY_STATS_H_
