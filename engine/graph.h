// The engine's model graph: ops with typed parameters, named values, and
// float initializers (weights). A Graph is produced by an importer (ONNX) or
// a builder, rewritten by passes, then treated as immutable and compiled into
// per-batch-size plans. It holds no oneDNN state and is cheap to inspect.
//
// Conventions, whatever the source format was:
//  - activations are NCHW (rank 4) or NC (rank 2); dimension 0 is the batch;
//  - Conv weights are [OC, IC/group, KH, KW], Gemm weights are [OC, IC]
//    (importers transpose and scale them into this form), biases are [OC].
#ifndef CNNSERVE_ENGINE_GRAPH_H_
#define CNNSERVE_ENGINE_GRAPH_H_

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace cnnserve::engine {

// Activation fused into the op that precedes it.
enum class Activation { kNone, kRelu };

struct ConvParams {
  std::vector<int64_t> kernel;      // {KH, KW}
  std::vector<int64_t> strides;     // {SH, SW}
  std::vector<int64_t> dilations;   // {DH, DW}, 1 = dense
  std::vector<int64_t> pads_begin;  // {top, left}
  std::vector<int64_t> pads_end;    // {bottom, right}
  int64_t group = 1;
  Activation activation = Activation::kNone;
};

struct PoolParams {
  enum class Kind { kMax } kind = Kind::kMax;
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;
  bool ceil_mode = false;
};

// Y = X * W^T + B with W [OC, IC].
struct GemmParams {
  Activation activation = Activation::kNone;
};

// Collapses dimensions [1, rank) into one: [N, C, H, W] -> [N, C*H*W].
struct FlattenParams {};

struct ReluParams {};

using OpParams =
    std::variant<ConvParams, PoolParams, GemmParams, FlattenParams, ReluParams>;

struct Node {
  std::string name;                  // from the source model, for messages
  std::vector<std::string> inputs;   // activation first, then initializers
  std::vector<std::string> outputs;  // exactly one for every op so far
  OpParams params;
};

// Short op name for messages and summaries ("Conv", "MaxPool", ...).
std::string OpName(const OpParams& params);

struct ValueInfo {
  std::string name;
  Shape shape;  // dimension 0 is -1: the batch
};

struct Graph {
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;  // in topological order
  std::map<std::string, Tensor> initializers;
};

// Shapes of every activation value for a given batch size. Fails with
// INVALID_ARGUMENT naming the node when shapes do not fit (kernel larger than
// its input, weights of the wrong size, a value used before it is produced).
absl::StatusOr<std::map<std::string, Shape>> InferShapes(const Graph& graph,
                                                         int64_t batch);

// Checks structure and shapes once (batch 1); importers call it last.
absl::Status ValidateGraph(const Graph& graph);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_GRAPH_H_
