#include "server/batch_cost_model.h"

#include <algorithm>
#include <cmath>

namespace cnnserve::server {
namespace {

// A size seen very often should not drown out the others in the fit: they
// are what pins the slope.
constexpr double kMaxWeightPerSize = 32;
constexpr double kSpreadWeightOfNewest = 0.05;

}  // namespace

void BatchCostModel::Observe(int64_t items, absl::Duration took) {
  if (items < 1) return;
  const double seconds = std::max(0.0, absl::ToDoubleSeconds(took));
  if (ready()) {
    const double predicted = absl::ToDoubleSeconds(Predict(items));
    if (predicted > 0) {
      const double error = std::abs(seconds - predicted) / predicted;
      spread_ += kSpreadWeightOfNewest * (error - spread_);
      if (ratios_.size() < kRatioWindow) {
        ratios_.push_back(seconds / predicted);
      } else {
        ratios_[next_ratio_] = seconds / predicted;
        next_ratio_ = (next_ratio_ + 1) % kRatioWindow;
      }
      std::vector<double> sorted = ratios_;
      const size_t k = std::min(sorted.size() - 1, sorted.size() * kUpperPercentile / 100);
      std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
      upper_factor_ = std::clamp(sorted[k], 1.02, 3.0);
    }
  }
  PerSize& s = sizes_[items];
  s.mean_seconds = s.count == 0 ? seconds : s.mean_seconds + kWeightOfNewest * (seconds - s.mean_seconds);
  ++s.count;
  ++fit_.samples;
  Refit();
}

void BatchCostModel::Refit() {
  double a = 0, c = 0;
  if (sizes_.size() == 1) {
    const auto& [b, s] = *sizes_.begin();
    c = s.mean_seconds / static_cast<double>(b);
  } else {
    double w_sum = 0, b_mean = 0, m_mean = 0;
    for (const auto& [b, s] : sizes_) {
      const double w = std::min<double>(s.count, kMaxWeightPerSize);
      w_sum += w;
      b_mean += w * static_cast<double>(b);
      m_mean += w * s.mean_seconds;
    }
    b_mean /= w_sum;
    m_mean /= w_sum;
    double sxy = 0, sxx = 0;
    for (const auto& [b, s] : sizes_) {
      const double w = std::min<double>(s.count, kMaxWeightPerSize);
      sxy += w * (static_cast<double>(b) - b_mean) * (s.mean_seconds - m_mean);
      sxx += w * (static_cast<double>(b) - b_mean) * (static_cast<double>(b) - b_mean);
    }
    c = std::max(0.0, sxy / sxx);
    a = m_mean - c * b_mean;
    if (a < 0) {  // the line would cross zero: fit through the origin instead
      double sbm = 0, sbb = 0;
      for (const auto& [b, s] : sizes_) {
        const double w = std::min<double>(s.count, kMaxWeightPerSize);
        sbm += w * static_cast<double>(b) * s.mean_seconds;
        sbb += w * static_cast<double>(b) * static_cast<double>(b);
      }
      a = 0;
      c = sbm / sbb;
    }
  }
  fit_.fixed = absl::Seconds(a);
  fit_.per_item = absl::Seconds(c);
  fit_.relative_spread = spread_;
}

absl::Duration BatchCostModel::Predict(int64_t items) const {
  return fit_.fixed + fit_.per_item * items;
}

absl::Duration BatchCostModel::Upper(int64_t items) const {
  return Predict(items) * upper_factor_;
}

}  // namespace cnnserve::server
