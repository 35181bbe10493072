// BatchCostModel: an online estimate of how long one batch takes to compute
// on this machine as a function of its size in items, t(b) = fixed + b * per_item,
// refitted from every measured batch.
//
// It keeps, per batch size seen, an exponentially weighted mean of the
// measured times (recent batches count most, so it follows a machine whose
// load changes), and fits the line through those means by least squares,
// each size weighted by how often it was seen. With a single size seen, the
// slope stays at the seeded one (or, unseeded, the time is taken as
// proportional to the size: pessimistic for larger batches). It also tracks
// how far measurements stray from the line, so that Upper(b) is a
// conservative bound to plan deadlines with.
//
// Not thread-safe: the batcher guards it with its own mutex.
#ifndef CNNSERVE_SERVER_BATCH_COST_MODEL_H_
#define CNNSERVE_SERVER_BATCH_COST_MODEL_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/time/time.h"

namespace cnnserve::server {

class BatchCostModel {
 public:
  struct Fit {
    absl::Duration fixed;     // a: per batch, whatever its size
    absl::Duration per_item;  // c: each item adds this
    double relative_spread = 0;  // deviation of measurements from the line, as a fraction
    int64_t samples = 0;      // batches observed (seeds included)
  };

  // Records one batch of `items` that took `took`.
  void Observe(int64_t items, absl::Duration took);

  // Whether enough batches were seen to plan with.
  bool ready() const { return fit_.samples >= kMinSamples; }
  const Fit& fit() const { return fit_; }

  // The line's estimate for a batch of `items`.
  absl::Duration Predict(int64_t items) const;
  // A conservative estimate for one batch: Predict times the
  // kUpperPercentile-th percentile of measured/predicted over the last
  // kRatioWindow batches (at least 1.02), so that a busy, noisy machine gets
  // a wider margin. The scheduler plans with it throughout.
  absl::Duration Upper(int64_t items) const;

  static constexpr int64_t kMinSamples = 3;
  static constexpr double kWeightOfNewest = 0.2;  // of a size's running mean
  static constexpr size_t kRatioWindow = 128;
  static constexpr size_t kUpperPercentile = 90;

 private:
  struct PerSize {
    double mean_seconds = 0;
    int64_t count = 0;
  };
  void Refit();

  std::map<int64_t, PerSize> sizes_;
  double spread_ = 0;  // running mean of |measured - predicted| / predicted
  std::vector<double> ratios_;  // measured / predicted, a ring of kRatioWindow
  size_t next_ratio_ = 0;
  double upper_factor_ = 1.05;
  Fit fit_;
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_BATCH_COST_MODEL_H_
