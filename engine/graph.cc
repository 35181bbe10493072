#include "engine/graph.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace cnnserve::engine {
namespace {

struct OpNamer {
  std::string operator()(const ConvParams&) const { return "Conv"; }
  std::string operator()(const PoolParams& p) const {
    const char* kind = p.kind == PoolParams::Kind::kMax ? "MaxPool" : "AveragePool";
    return p.global ? absl::StrCat("Global", kind) : kind;
  }
  std::string operator()(const GemmParams&) const { return "Gemm"; }
  std::string operator()(const MatMulParams&) const { return "MatMul"; }
  std::string operator()(const FlattenParams&) const { return "Flatten"; }
  std::string operator()(const ReshapeParams&) const { return "Reshape"; }
  std::string operator()(const TransposeParams&) const { return "Transpose"; }
  std::string operator()(const EltwiseParams& p) const {
    switch (p.activation.kind) {
      case Activation::Kind::kRelu: return "Relu";
      case Activation::Kind::kLeakyRelu: return "LeakyRelu";
      case Activation::Kind::kClip: return "Clip";
      case Activation::Kind::kSigmoid: return "Sigmoid";
    }
    return "Eltwise";
  }
  std::string operator()(const AddParams&) const { return "Add"; }
  std::string operator()(const ConcatParams&) const { return "Concat"; }
  std::string operator()(const LrnParams&) const { return "LRN"; }
  std::string operator()(const SoftmaxParams&) const { return "Softmax"; }
  std::string operator()(const BatchNormParams&) const { return "BatchNormalization"; }
  std::string operator()(const PadParams&) const { return "Pad"; }
};

absl::Status NodeError(const Node& node, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node.name, "' (", OpName(node.params), "): ", what));
}

// Output size of a sliding window along one spatial axis (ONNX semantics).
absl::StatusOr<int64_t> WindowOutput(const Node& node, int64_t in, int64_t kernel,
                                     int64_t stride, int64_t dilation, int64_t pad_begin,
                                     int64_t pad_end, bool ceil_mode) {
  if (kernel <= 0 || stride <= 0 || dilation <= 0 || pad_begin < 0 || pad_end < 0) {
    return NodeError(node, "kernel, strides and dilations must be positive, pads non-negative");
  }
  const int64_t effective = (kernel - 1) * dilation + 1;
  const int64_t span = in + pad_begin + pad_end - effective;
  if (span < 0) {
    return NodeError(node, absl::StrCat("kernel extent ", effective,
                                        " is larger than the padded input ",
                                        in + pad_begin + pad_end));
  }
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // ONNX and PyTorch drop a last window that would start inside the end padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

absl::Status CheckWindow(const Node& node, const std::vector<int64_t>& kernel,
                         const std::vector<int64_t>& strides,
                         const std::vector<int64_t>& pads_begin,
                         const std::vector<int64_t>& pads_end) {
  if (kernel.size() != 2 || strides.size() != 2 || pads_begin.size() != 2 ||
      pads_end.size() != 2) {
    return NodeError(node, "kernel, strides and pads must describe 2 spatial dimensions");
  }
  return absl::OkStatus();
}

absl::StatusOr<Shape> ConvShape(const Graph& graph, const Node& node, const ConvParams& p,
                                const Shape& in) {
  if (in.size() != 4) return NodeError(node, "expects a rank-4 NCHW input, got " + ShapeToString(in));
  RETURN_IF_ERROR(CheckWindow(node, p.kernel, p.strides, p.pads_begin, p.pads_end));
  if (p.dilations.size() != 2) return NodeError(node, "dilations must have 2 values");
  const Tensor* w = node.inputs.size() > 1 ? graph.FindInitializer(node.inputs[1]) : nullptr;
  if (w == nullptr || w->shape.size() != 4) {
    return NodeError(node, "weights must be a rank-4 initializer [OC, IC/group, KH, KW]");
  }
  if (p.group <= 0 || w->shape[0] % p.group != 0 || w->shape[1] * p.group != in[1]) {
    return NodeError(node, absl::StrCat("weights ", ShapeToString(w->shape), " with group ",
                                        p.group, " do not fit input ", ShapeToString(in)));
  }
  if (w->shape[2] != p.kernel[0] || w->shape[3] != p.kernel[1]) {
    return NodeError(node, "kernel_shape does not match the weights");
  }
  if (p.has_bias) {
    const Tensor* b = node.inputs.size() > 2 ? graph.FindInitializer(node.inputs[2]) : nullptr;
    if (b == nullptr || b->shape != Shape{w->shape[0]}) {
      return NodeError(node, absl::StrCat("bias must be an initializer of shape [", w->shape[0], "]"));
    }
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
  if (p.global) return Shape{in[0], in[1], 1, 1};
  RETURN_IF_ERROR(CheckWindow(node, p.kernel, p.strides, p.pads_begin, p.pads_end));
  Shape out = {in[0], in[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    ASSIGN_OR_RETURN(out[2 + i], WindowOutput(node, in[2 + i], p.kernel[i], p.strides[i], 1,
                                              p.pads_begin[i], p.pads_end[i], p.ceil_mode));
    if (p.pads_begin[i] >= p.kernel[i] || p.pads_end[i] >= p.kernel[i]) {
      return NodeError(node, "pads must be smaller than the kernel");
    }
  }
  return out;
}

absl::StatusOr<Shape> GemmShape(const Graph& graph, const Node& node, const GemmParams& p,
                                const Shape& in) {
  if (in.size() != 2) return NodeError(node, "expects a rank-2 [N, K] input, got " + ShapeToString(in));
  const Tensor* w = node.inputs.size() > 1 ? graph.FindInitializer(node.inputs[1]) : nullptr;
  if (w == nullptr || w->shape.size() != 2 || w->shape[1] != in[1]) {
    return NodeError(node, absl::StrCat("weights must be an initializer [OC, ", in[1], "]"));
  }
  if (p.has_bias) {
    const Tensor* b = node.inputs.size() > 2 ? graph.FindInitializer(node.inputs[2]) : nullptr;
    if (b == nullptr || b->shape != Shape{w->shape[0]}) {
      return NodeError(node, absl::StrCat("bias must be an initializer of shape [", w->shape[0], "]"));
    }
  }
  return Shape{in[0], w->shape[0]};
}

// Numpy broadcasting of two shapes.
absl::StatusOr<Shape> Broadcast(const Node& node, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1) {
      return NodeError(node, "shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                                 " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t NormalizeAxis(int64_t axis, size_t rank) { return axis < 0 ? axis + rank : axis; }

absl::StatusOr<Shape> MatMulShape(const Node& node, const Shape& a, const Shape& b) {
  if (a.size() < 2 || b.size() < 2) return NodeError(node, "inputs must have rank 2 or more");
  if (a.back() != b[b.size() - 2]) {
    return NodeError(node, "inner dimensions of " + ShapeToString(a) + " and " +
                               ShapeToString(b) + " differ");
  }
  ASSIGN_OR_RETURN(Shape lead, Broadcast(node, Shape(a.begin(), a.end() - 2),
                                         Shape(b.begin(), b.end() - 2)));
  lead.push_back(a[a.size() - 2]);
  lead.push_back(b.back());
  return lead;
}

absl::StatusOr<Shape> ReshapeShape(const Node& node, const ReshapeParams& p, const Shape& in) {
  Shape out;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < p.shape.size(); ++i) {
    int64_t d = p.shape[i];
    if (d == 0) {
      if (i >= in.size()) return NodeError(node, "0 in the shape names a missing input dimension");
      d = in[i];
    }
    if (d == -1) {
      if (infer >= 0) return NodeError(node, "the shape has more than one -1");
      infer = static_cast<int>(i);
      d = 1;
    } else if (d < 0) {
      return NodeError(node, absl::StrCat("invalid dimension ", d, " in the shape"));
    }
    known *= d;
    out.push_back(d);
  }
  const int64_t total = NumElements(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      return NodeError(node, "cannot infer -1 reshaping " + ShapeToString(in));
    }
    out[infer] = total / known;
  }
  if (NumElements(out) != total) {
    return NodeError(node, "cannot reshape " + ShapeToString(in) + " to " + ShapeToString(out));
  }
  return out;
}

}  // namespace

std::string OpName(const OpParams& params) { return std::visit(OpNamer{}, params); }

const Tensor* Graph::FindInitializer(const std::string& name) const {
  auto it = initializers.find(name);
  return it == initializers.end() ? nullptr : &it->second;
}

absl::StatusOr<Shape> InferNodeShape(const Graph& graph, const Node& node,
                                     const std::map<std::string, Shape>& shapes) {
  if (node.inputs.empty() || node.outputs.size() != 1) {
    return NodeError(node, "expects at least one input and exactly one output");
  }
  auto shape_of = [&](size_t i) -> absl::StatusOr<Shape> {
    if (i >= node.inputs.size() || node.inputs[i].empty()) {
      return NodeError(node, absl::StrCat("input ", i, " is missing"));
    }
    if (const Tensor* t = graph.FindInitializer(node.inputs[i])) return t->shape;
    auto it = shapes.find(node.inputs[i]);
    if (it == shapes.end()) {
      return NodeError(node, "input '" + node.inputs[i] + "' is not produced by any earlier node");
    }
    return it->second;
  };
  ASSIGN_OR_RETURN(const Shape in, shape_of(0));
  if (in.empty()) return NodeError(node, "input 0 is a scalar; an activation is expected");
  if (const auto* p = std::get_if<ConvParams>(&node.params)) {
    ASSIGN_OR_RETURN(Shape out, ConvShape(graph, node, *p, in));
    const bool has_sum = std::any_of(p->post_ops.begin(), p->post_ops.end(),
                                     [](const PostOp& op) { return op.is_sum; });
    if (has_sum) {
      ASSIGN_OR_RETURN(Shape residual, shape_of(node.inputs.size() - 1));
      if (residual != out) return NodeError(node, "residual input shape differs from the output");
    }
    return out;
  }
  if (const auto* p = std::get_if<PoolParams>(&node.params)) return PoolShape(node, *p, in);
  if (const auto* p = std::get_if<GemmParams>(&node.params)) return GemmShape(graph, node, *p, in);
  if (std::holds_alternative<MatMulParams>(node.params)) {
    ASSIGN_OR_RETURN(Shape b, shape_of(1));
    return MatMulShape(node, in, b);
  }
  if (const auto* p = std::get_if<FlattenParams>(&node.params)) {
    const int64_t axis = NormalizeAxis(p->axis, in.size());
    if (axis < 0 || axis > static_cast<int64_t>(in.size())) return NodeError(node, "axis out of range");
    const int64_t outer = NumElements(Shape(in.begin(), in.begin() + axis));
    return Shape{outer, NumElements(in) / std::max<int64_t>(outer, 1)};
  }
  if (const auto* p = std::get_if<ReshapeParams>(&node.params)) return ReshapeShape(node, *p, in);
  if (const auto* p = std::get_if<TransposeParams>(&node.params)) {
    std::vector<int64_t> seen(in.size(), 0);
    if (p->perm.size() != in.size()) return NodeError(node, "perm does not match the input rank");
    Shape out;
    for (int64_t axis : p->perm) {
      if (axis < 0 || axis >= static_cast<int64_t>(in.size()) || seen[axis]++) {
        return NodeError(node, "perm is not a permutation of the input axes");
      }
      out.push_back(in[axis]);
    }
    return out;
  }
  if (std::holds_alternative<AddParams>(node.params)) {
    ASSIGN_OR_RETURN(Shape b, shape_of(1));
    ASSIGN_OR_RETURN(Shape out, Broadcast(node, in, b));
    if (out != in && out != b) return NodeError(node, "broadcasting both inputs is not supported");
    return out;
  }
  if (const auto* p = std::get_if<ConcatParams>(&node.params)) {
    const int64_t axis = NormalizeAxis(p->axis, in.size());
    if (axis < 0 || axis >= static_cast<int64_t>(in.size())) return NodeError(node, "axis out of range");
    Shape out = in;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      ASSIGN_OR_RETURN(Shape s, shape_of(i));
      bool fits = s.size() == in.size();
      for (size_t d = 0; fits && d < s.size(); ++d) fits = d == static_cast<size_t>(axis) || s[d] == in[d];
      if (!fits) {
        return NodeError(node, "input " + ShapeToString(s) + " does not fit " + ShapeToString(in));
      }
      out[axis] += s[axis];
    }
    return out;
  }
  if (const auto* p = std::get_if<PadParams>(&node.params)) {
    if (in.size() != 4) return NodeError(node, "only pads of NCHW spatial dimensions are supported");
    return Shape{in[0], in[1], in[2] + p->pads_begin[0] + p->pads_end[0],
                 in[3] + p->pads_begin[1] + p->pads_end[1]};
  }
  if (const auto* p = std::get_if<SoftmaxParams>(&node.params)) {
    const int64_t axis = NormalizeAxis(p->axis, in.size());
    if (axis < 0 || axis >= static_cast<int64_t>(in.size())) return NodeError(node, "axis out of range");
    return in;
  }
  if (std::holds_alternative<BatchNormParams>(node.params)) {
    for (size_t i = 1; i < 5; ++i) {
      const Tensor* t = i < node.inputs.size() ? graph.FindInitializer(node.inputs[i]) : nullptr;
      if (t == nullptr || in.size() < 2 || NumElements(t->shape) != in[1]) {
        return NodeError(node, absl::StrCat("scale, B, mean and var must be initializers of ",
                                            in.size() < 2 ? 0 : in[1], " values"));
      }
    }
    return in;
  }
  if (std::holds_alternative<LrnParams>(node.params) && in.size() != 4) {
    return NodeError(node, "expects a rank-4 NCHW input");
  }
  return in;  // Eltwise, LRN
}

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
    ASSIGN_OR_RETURN(Shape out, InferNodeShape(graph, node, shapes));
    if (shapes.count(node.outputs[0]) != 0 || graph.IsInitializer(node.outputs[0])) {
      return NodeError(node, "output '" + node.outputs[0] + "' is produced twice");
    }
    shapes[node.outputs[0]] = std::move(out);
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
  return InferShapes(graph, graph.nominal_batch).status();
}

}  // namespace cnnserve::engine
