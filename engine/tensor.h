// Plain dense float tensors and shapes, the engine's currency at its edges.
// A Shape lists dimensions outermost first; in a model's declared shapes a
// dimension of -1 stands for the batch size, which is chosen per run.
#ifndef CNNSERVE_ENGINE_TENSOR_H_
#define CNNSERVE_ENGINE_TENSOR_H_

#include <cstdint>
#include <string>
#include <vector>

namespace cnnserve::engine {

using Shape = std::vector<int64_t>;

// Product of the dimensions; 1 for a scalar (empty shape).
int64_t NumElements(const Shape& shape);

// Elements in one batch item: the product of dimensions 1 to rank-1.
int64_t ItemElements(const Shape& shape);

// "[N,1,32,32]" style, with -1 printed as N.
std::string ShapeToString(const Shape& shape);

// A dense, row-major (NCHW for images) float tensor that owns its data.
struct Tensor {
  Shape shape;
  std::vector<float> data;
};

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_TENSOR_H_
