// Rewrites of ONNX graphs before import: op decompositions that exporters
// write, recognised back into the one op the engine runs.
//
// PyTorch has no ONNX export for nn.LocalResponseNorm: torch.onnx.export
// writes the Python body of F.local_response_norm, about a dozen ops on a
// 5-D view of the squared input (Mul, Unsqueeze, Reshape, Pad, AveragePool
// with a [size, 1, 1] window, Squeeze, Reshape, Mul, Add, Pow, Div), plus the
// Shape/If chains around them. That is LRN with bias = k, and it becomes an
// ONNX LRN node here. Nodes that only fed the decomposition are dropped.
#ifndef CNNSERVE_ENGINE_ONNX_REWRITE_H_
#define CNNSERVE_ENGINE_ONNX_REWRITE_H_

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"

namespace cnnserve::engine {

// Replaces each PyTorch LocalResponseNorm decomposition in `graph` with an
// LRN node; returns how many. UNIMPLEMENTED for an even window size (PyTorch
// centres an even window one channel lower than ONNX's LRN does).
absl::StatusOr<int> RecognizeTorchLrn(onnx::GraphProto& graph);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_ONNX_REWRITE_H_
