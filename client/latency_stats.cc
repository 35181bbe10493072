#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cnnserve::client {

void LatencyStats::Merge(const LatencyStats& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  sorted_ = false;
}

double LatencyStats::Percentile(double p) {
  if (samples_.empty()) return 0;
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  const double rank = std::ceil(p / 100.0 * static_cast<double>(samples_.size()));
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(samples_.size()))) - 1;
  return samples_[index];
}

double LatencyStats::Max() { return Percentile(100); }

double LatencyStats::Mean() const {
  if (samples_.empty()) return 0;
  return std::accumulate(samples_.begin(), samples_.end(), 0.0) / static_cast<double>(samples_.size());
}

int64_t LatencyStats::CountAtMost(double millis) const {
  return std::count_if(samples_.begin(), samples_.end(), [millis](double v) { return v <= millis; });
}

}  // namespace cnnserve::client
