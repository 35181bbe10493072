// What a classifier's logits become for people: softmax probabilities and
// the top k classes. Pure functions over one item's scores; thread-safe.
#ifndef CNNSERVE_ENGINE_CLASSIFIER_HEAD_H_
#define CNNSERVE_ENGINE_CLASSIFIER_HEAD_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace cnnserve::engine {

// Numerically stable softmax (the maximum is subtracted first).
std::vector<float> Softmax(absl::Span<const float> logits);

struct ClassScore {
  int64_t index = 0;
  float score = 0;
};

// The k highest scores, best first; ties keep the lower index first.
// k larger than the number of classes returns them all.
std::vector<ClassScore> TopK(absl::Span<const float> scores, int64_t k);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_CLASSIFIER_HEAD_H_
