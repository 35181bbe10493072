#include "engine/graph.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace cnnserve::engine {
namespace {

struct OpNamer {
  std::string operator()(const ConvParams&) const { return "Conv"; }
  std::string operator()(const PoolParams&) const { return "MaxPool"; }
  std::string operator()(const GemmParams&) const { return "Gemm"; }
  std::string operator()(const FlattenParams&) const { return "Flatten"; }
  std::string operator()(const ReluParams&) const { return "Relu"; }
};

absl::Status NodeError(const Node& node, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node.name, "' (", OpName(node.params), "): ", what));
}

// Output size of a sliding window along one spatial axis (ONNX semantics).
absl::StatusOr<int64_t> WindowOutput(const Node& node, int64_t in, int64_t kernel,
                                     int64_t stride, int64_t dilation, int64_t pad_begin,
                                     int64_t pad_end, bool ceil_mode) {
  const int64_t effective = (kernel - 1) * dilation + 1;
  const int64_t span = in + pad_begin + pad_end - effective;
  if (kernel <= 0 || stride <= 0 || dilation <= 0 || pad_begin < 0 || pad_end < 0) {
    return NodeError(node, "kernel, strides and dilations must be positive, pads non-negative");
  }
  if (span < 0) {
    return NodeError(node, absl::StrCat("kernel extent ", effective,
                                        " is larger than the padded input ",
                                        in + pad_begin + pad_end));
  }
  return (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
}

const Tensor* FindInitializer(const Graph& graph, const Node& node, size_t index) {
  if (node.inputs.size() <= index) return nullptr;
  auto it = graph.initializers.find(node.inputs[index]);
  return it == graph.initializers.end() ? nullptr : &it->second;
}

absl::StatusOr<Shape> ConvShape(const Graph& graph, const Node& node,
                                const ConvParams& p, const Shape& in) {
  if (in.size() != 4) return NodeError(node, "expects a rank-4 NCHW input, got " + ShapeToString(in));
  const Tensor* w = FindInitializer(graph, node, 1);
  if (w == nullptr || w->shape.size() != 4) {
    return NodeError(node, "weights must be a rank-4 initializer [OC, IC/group, KH, KW]");
  }
  if (p.group <= 0 || in[1] % p.group != 0 || w->shape[0] % p.group != 0 ||
      w->shape[1] * p.group != in[1]) {
    return NodeError(node, absl::StrCat("weights ", ShapeToString(w->shape), " with group ",
                                        p.group, " do not fit input ", ShapeToString(in)));
  }
  if (w->shape[2] != p.kernel[0] || w->shape[3] != p.kernel[1]) {
    return NodeError(node, "kernel_shape does not match the weights");
  }
  const Tensor* b = FindInitializer(graph, node, 2);
  if (node.inputs.size() > 2 && (b == nullptr || b->shape != Shape{w->shape[0]})) {
    return NodeError(node, absl::StrCat("bias must be an initializer of shape [", w->shape[0], "]"));
  }
  Shape out = {in[0], w->shape[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    ASSIGN_OR_RETURN(out[2 + i], WindowOutput(node, in[2 + i], p.kernel[i], p.strides[i],
                                              p.dilations[i], p.pads_begin[i], p.pads_end[i],
                                              /*ceil_mode=*/false));
  }
  return out;
}

absl::StatusOr<Shape> PoolShape(const Node& node, const PoolParams& p, const Shape& in) {
  if (in.size() != 4) return NodeError(node, "expects a rank-4 NCHW input, got " + ShapeToString(in));
  Shape out = {in[0], in[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    ASSIGN_OR_RETURN(out[2 + i], WindowOutput(node, in[2 + i], p.kernel[i], p.strides[i], 1,
                                              p.pads_begin[i], p.pads_end[i], p.ceil_mode));
    // ONNX and PyTorch drop a last window that would start inside the end padding.
    if (p.ceil_mode && (out[2 + i] - 1) * p.strides[i] >= in[2 + i] + p.pads_begin[i]) {
      --out[2 + i];
    }
  }
  return out;
}

absl::StatusOr<Shape> GemmShape(const Graph& graph, const Node& node, const Shape& in) {
  if (in.size() != 2) return NodeError(node, "expects a rank-2 [N, K] input, got " + ShapeToString(in));
  const Tensor* w = FindInitializer(graph, node, 1);
  if (w == nullptr || w->shape.size() != 2 || w->shape[1] != in[1]) {
    return NodeError(node, absl::StrCat("weights must be an initializer [OC, ", in[1], "]"));
  }
  const Tensor* b = FindInitializer(graph, node, 2);
  if (node.inputs.size() > 2 && (b == nullptr || b->shape != Shape{w->shape[0]})) {
    return NodeError(node, absl::StrCat("bias must be an initializer of shape [", w->shape[0], "]"));
  }
  return Shape{in[0], w->shape[0]};
}

}  // namespace

std::string OpName(const OpParams& params) { return std::visit(OpNamer{}, params); }

absl::StatusOr<std::map<std::string, Shape>> InferShapes(const Graph& graph, int64_t batch) {
  if (batch <= 0) return absl::InvalidArgumentError("batch size must be positive");
  std::map<std::string, Shape> shapes;
  for (const ValueInfo& input : graph.inputs) {
    Shape s = input.shape;
    if (s.empty()) return absl::InvalidArgumentError("input '" + input.name + "' has no shape");
    s[0] = batch;
    shapes[input.name] = s;
  }
  for (const Node& node : graph.nodes) {
    if (node.inputs.empty() || node.outputs.size() != 1) {
      return NodeError(node, "expects one activation input and one output");
    }
    auto it = shapes.find(node.inputs[0]);
    if (it == shapes.end()) {
      return NodeError(node, "input '" + node.inputs[0] + "' is not produced by any earlier node");
    }
    const Shape& in = it->second;
    absl::StatusOr<Shape> out;
    if (const auto* conv = std::get_if<ConvParams>(&node.params)) {
      out = ConvShape(graph, node, *conv, in);
    } else if (const auto* pool = std::get_if<PoolParams>(&node.params)) {
      out = PoolShape(node, *pool, in);
    } else if (std::holds_alternative<GemmParams>(node.params)) {
      out = GemmShape(graph, node, in);
    } else if (std::holds_alternative<FlattenParams>(node.params)) {
      out = Shape{in[0], NumElements(in) / in[0]};
    } else {
      out = in;  // Relu
    }
    if (!out.ok()) return out.status();
    if (shapes.count(node.outputs[0]) != 0) {
      return NodeError(node, "output '" + node.outputs[0] + "' is produced twice");
    }
    shapes[node.outputs[0]] = *std::move(out);
  }
  for (const ValueInfo& output : graph.outputs) {
    if (shapes.count(output.name) == 0) {
      return absl::InvalidArgumentError("graph output '" + output.name +
                                        "' is not produced by any node");
    }
  }
  return shapes;
}

absl::Status ValidateGraph(const Graph& graph) {
  if (graph.inputs.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a model needs exactly one activation input, this one has ", graph.inputs.size()));
  }
  if (graph.outputs.empty()) return absl::InvalidArgumentError("the model has no outputs");
  return InferShapes(graph, 1).status();
}

}  // namespace cnnserve::engine
