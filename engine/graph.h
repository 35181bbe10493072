// The engine's model graph: ops with typed parameters, named values, and
// float initializers (weights). A Graph is produced by an importer (ONNX) or
// a builder (the zoo), rewritten by passes, then treated as immutable and
// compiled into per-batch-size plans. It holds no oneDNN state.
//
// Conventions, whatever the source format was:
//  - a node's inputs name values: activations (produced by the graph input
//    or an earlier node) or initializers; an empty name is an absent
//    optional input;
//  - dimension 0 of every activation is the batch;
//  - Conv weights are [OC, IC/group, KH, KW]; Gemm weights are [OC, IC]
//    (importers transpose and scale them into this form); biases are [OC].
#ifndef CNNSERVE_ENGINE_GRAPH_H_
#define CNNSERVE_ENGINE_GRAPH_H_

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace cnnserve::engine {

// An elementwise function, standalone or fused into the op before it.
struct Activation {
  enum class Kind { kRelu, kLeakyRelu, kClip, kSigmoid } kind = Kind::kRelu;
  float alpha = 0;  // LeakyRelu: slope; Clip: min
  float beta = 0;   // Clip: max
};

// What runs after a Conv's or Gemm's own arithmetic, in order: an
// activation, or (Conv only) adding the node's residual input (last input).
struct PostOp {
  bool is_sum = false;
  Activation activation;  // when !is_sum
};

struct ConvParams {
  std::vector<int64_t> kernel;      // {KH, KW}
  std::vector<int64_t> strides;     // {SH, SW}
  std::vector<int64_t> dilations;   // {DH, DW}, 1 = dense
  std::vector<int64_t> pads_begin;  // {top, left}
  std::vector<int64_t> pads_end;    // {bottom, right}
  int64_t group = 1;
  bool has_bias = false;            // inputs: x, W, [B], [residual]
  std::vector<PostOp> post_ops;
};

struct PoolParams {
  enum class Kind { kMax, kAverage } kind = Kind::kMax;
  bool global = false;  // kernel = the whole spatial extent
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;
  bool ceil_mode = false;
  bool count_include_pad = false;  // average only
};

// Y = X * W^T + B with W [OC, IC].
struct GemmParams {
  bool has_bias = false;
  std::vector<PostOp> post_ops;  // activations only
};

// Y = A x B over the last two dimensions, broadcasting the leading ones.
struct MatMulParams {};

// [d0, ..., dn] -> [d0 * ... * d(axis-1), d(axis) * ... * dn].
struct FlattenParams {
  int64_t axis = 1;
};

// ONNX Reshape semantics: 0 copies the input dimension, -1 is inferred.
struct ReshapeParams {
  std::vector<int64_t> shape;
};

struct TransposeParams {
  std::vector<int64_t> perm;
};

struct EltwiseParams {
  Activation activation;
};

// Elementwise sum of two inputs; an initializer operand broadcasts (numpy rules).
struct AddParams {};

struct ConcatParams {
  int64_t axis = 1;
};

// Across channels: x / (bias + alpha / size * sum(x^2))^beta.
struct LrnParams {
  int64_t size = 5;
  float alpha = 1e-4f;
  float beta = 0.75f;
  float bias = 1.0f;
};

struct SoftmaxParams {
  int64_t axis = 1;
  bool coerce_2d = false;  // opset < 13: over all dimensions from axis on
};

// Inference batch normalization; passes fold it into the Conv before it or
// turn it into a depthwise 1x1 Conv, so plans never see it.
struct BatchNormParams {
  float epsilon = 1e-5f;  // inputs: x, scale, B, mean, var
};

// Constant padding of H and W. Passes fold a zero Pad into the Conv or
// AveragePool after it; any other runs as a fill and a copy.
struct PadParams {
  std::vector<int64_t> pads_begin;  // {top, left}
  std::vector<int64_t> pads_end;    // {bottom, right}
  float value = 0.0f;
};

using OpParams =
    std::variant<ConvParams, PoolParams, GemmParams, MatMulParams, FlattenParams, ReshapeParams,
                 TransposeParams, EltwiseParams, AddParams, ConcatParams, LrnParams,
                 SoftmaxParams, BatchNormParams, PadParams>;

struct Node {
  std::string name;                  // from the source model, for messages
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;  // exactly one for every op
  OpParams params;
};

// Op name for messages and summaries ("Conv", "MaxPool", ...).
std::string OpName(const OpParams& params);

struct ValueInfo {
  std::string name;
  Shape shape;  // dimension 0 is -1: the batch
};

struct Graph {
  // The batch size the graph was checked with: the source's own when it
  // fixes one, else 1. A graph that reshapes the batch away (a fixed-size
  // Reshape) runs at this batch size only.
  int64_t nominal_batch = 1;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;  // in topological order
  std::map<std::string, Tensor> initializers;

  bool IsInitializer(const std::string& name) const { return initializers.count(name) != 0; }
  const Tensor* FindInitializer(const std::string& name) const;
};

// The output shape of one node given the shapes of its activation inputs
// (by name). Fails with INVALID_ARGUMENT naming the node when they do not fit.
absl::StatusOr<Shape> InferNodeShape(const Graph& graph, const Node& node,
                                     const std::map<std::string, Shape>& shapes);

// Shapes of every activation value for a given batch size. Fails with
// INVALID_ARGUMENT naming the node when shapes do not fit or a value is used
// before it is produced (dangling edges, cycles).
absl::StatusOr<std::map<std::string, Shape>> InferShapes(const Graph& graph, int64_t batch);

// Checks structure and shapes once, at nominal_batch; importers and Model call it.
absl::Status ValidateGraph(const Graph& graph);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_GRAPH_H_
