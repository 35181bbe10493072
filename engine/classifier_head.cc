#include "engine/classifier_head.h"

#include <algorithm>
#include <cmath>

namespace cnnserve::engine {

std::vector<float> Softmax(absl::Span<const float> logits) {
  std::vector<float> out(logits.size());
  if (logits.empty()) return out;
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += out[i] = std::exp(logits[i] - max);
  for (float& v : out) v = static_cast<float>(v / sum);
  return out;
}

std::vector<ClassScore> TopK(absl::Span<const float> scores, int64_t k) {
  std::vector<ClassScore> all(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) all[i] = {static_cast<int64_t>(i), scores[i]};
  k = std::clamp<int64_t>(k, 0, all.size());
  std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const ClassScore& a, const ClassScore& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
  });
  all.resize(k);
  return all;
}

}  // namespace cnnserve::engine
