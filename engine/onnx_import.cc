#include "engine/onnx_import.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/onnx_rewrite.h"
#include "engine/status_macros.h"
#include "onnx/onnx_pb.h"

namespace cnnserve::engine {
namespace {

constexpr char kSupportedOps[] =
    "Conv, Relu, LeakyRelu, Clip, Sigmoid, MaxPool, AveragePool, GlobalAveragePool, "
    "GlobalMaxPool, LRN, BatchNormalization, Add, Sum, Concat, Gemm, MatMul, Flatten, Reshape, "
    "Transpose, Pad, Softmax, Dropout, Identity, Constant, PyTorch's LocalResponseNorm "
    "decomposition, and Shape/Gather/Unsqueeze/Squeeze/Concat/Cast/ConstantOfShape/Reshape/Slice/"
    "Transpose on constant integer tensors";

// In constant-folded int64 shape tensors, the batch size (unknown until run).
constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();

absl::Status Unsupported(const onnx::NodeProto& node, const std::string& what) {
  return absl::UnimplementedError(absl::StrCat("node '", node.name(), "' (", node.op_type(),
                                               "): ", what));
}

absl::Status Invalid(const onnx::NodeProto& node, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("node '", node.name(), "' (", node.op_type(),
                                                 "): ", what));
}

// Typed access to a node's attributes; rejects attributes the op does not know.
class Attributes {
 public:
  static absl::StatusOr<Attributes> Create(const onnx::NodeProto& node,
                                           const std::set<std::string>& known) {
    Attributes attrs;
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (known.count(a.name()) == 0) {
        return Unsupported(node, absl::StrCat("attribute '", a.name(), "' is not supported"));
      }
      attrs.by_name_[a.name()] = &a;
    }
    return attrs;
  }

  bool Has(const std::string& name) const { return by_name_.count(name) != 0; }
  std::vector<int64_t> Ints(const std::string& name, std::vector<int64_t> fallback) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return fallback;
    return {it->second->ints().begin(), it->second->ints().end()};
  }
  int64_t Int(const std::string& name, int64_t fallback) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? fallback : it->second->i();
  }
  float Float(const std::string& name, float fallback) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? fallback : it->second->f();
  }
  std::string String(const std::string& name, std::string fallback) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? fallback : it->second->s();
  }
  const onnx::TensorProto* TensorAttr(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second->t();
  }

 private:
  absl::flat_hash_map<std::string, const onnx::AttributeProto*> by_name_;
};

// Checks that a tensor holds the elements its dims claim before anything is allocated.
absl::StatusOr<Shape> TensorShape(const onnx::TensorProto& t, int64_t present, size_t elem_size,
                                  const std::string& where) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    return absl::InvalidArgumentError(
        where + " refers to external data; only self-contained .onnx files are accepted");
  }
  Shape shape;
  int64_t claimed = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && claimed > std::numeric_limits<int64_t>::max() / d)) {
      return absl::InvalidArgumentError(where + " has an invalid dimension");
    }
    claimed *= d;
    shape.push_back(d);
  }
  if (t.has_raw_data()) {
    if (t.raw_data().size() % elem_size != 0) {
      return absl::InvalidArgumentError(where + " has raw data of a size that is not whole elements");
    }
    present = t.raw_data().size() / elem_size;
  }
  if (claimed != present) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has shape ", ShapeToString(shape),
                                                   " (", claimed, " elements) but holds ", present));
  }
  return shape;
}

absl::StatusOr<Tensor> ConvertFloatTensor(const onnx::TensorProto& t) {
  const std::string where = absl::StrCat("initializer '", t.name(), "'");
  Tensor out;
  ASSIGN_OR_RETURN(out.shape, TensorShape(t, t.float_data_size(), sizeof(float), where));
  out.data.resize(NumElements(out.shape));
  if (t.has_raw_data()) {
    std::memcpy(out.data.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    std::copy(t.float_data().begin(), t.float_data().end(), out.data.begin());
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ConvertIntTensor(const onnx::TensorProto& t) {
  const std::string where = absl::StrCat("tensor '", t.name(), "'");
  std::vector<int64_t> out;
  if (t.data_type() == onnx::TensorProto::INT64) {
    ASSIGN_OR_RETURN(Shape s, TensorShape(t, t.int64_data_size(), sizeof(int64_t), where));
    out.resize(NumElements(s));
    if (t.has_raw_data()) {
      std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
    } else {
      std::copy(t.int64_data().begin(), t.int64_data().end(), out.begin());
    }
  } else {
    ASSIGN_OR_RETURN(Shape s, TensorShape(t, t.int32_data_size(), sizeof(int32_t), where));
    out.resize(NumElements(s));
    if (t.has_raw_data()) {
      std::vector<int32_t> tmp(out.size());
      std::memcpy(tmp.data(), t.raw_data().data(), t.raw_data().size());
      std::copy(tmp.begin(), tmp.end(), out.begin());
    } else {
      std::copy(t.int32_data().begin(), t.int32_data().end(), out.begin());
    }
  }
  return out;
}

// `data` (row-major, of `shape`) with its axes permuted by the Transpose
// attribute `perm` (empty: reversed); sets *out_shape. An error string names
// a perm that does not fit.
template <typename T>
absl::StatusOr<std::vector<T>> Permute(const std::vector<T>& data, const Shape& shape,
                                       std::vector<int64_t> perm, Shape* out_shape) {
  const size_t rank = shape.size();
  if (perm.empty()) {
    for (size_t i = 0; i < rank; ++i) perm.push_back(rank - 1 - i);
  }
  if (perm.size() != rank) return absl::InvalidArgumentError("perm does not match the rank");
  out_shape->clear();
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank)) return absl::InvalidArgumentError("perm out of range");
    out_shape->push_back(shape[p]);
  }
  std::vector<int64_t> in_strides(rank, 1), index(rank, 0);
  for (int i = static_cast<int>(rank) - 2; i >= 0; --i) in_strides[i] = in_strides[i + 1] * shape[i + 1];
  std::vector<T> out(data.size());
  for (size_t flat = 0; flat < out.size(); ++flat) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) src += index[d] * in_strides[perm[d]];
    out[flat] = data[src];
    for (int d = static_cast<int>(rank) - 1; d >= 0 && ++index[d] == (*out_shape)[d]; --d) index[d] = 0;
  }
  return out;
}

class Importer {
 public:
  // Takes the model mutable to free each initializer's bytes once they are
  // converted, so a large model is not held twice while it loads.
  absl::StatusOr<Graph> Run(onnx::ModelProto& model) {
    for (const auto& op : model.opset_import()) {
      if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
    }
    onnx::GraphProto& g = *model.mutable_graph();
    RETURN_IF_ERROR(RecognizeTorchLrn(g).status());
    for (onnx::TensorProto& t : *g.mutable_initializer()) {
      RETURN_IF_ERROR(AddConstant(t.name(), t));
      delete t.release_raw_data();
      google::protobuf::RepeatedField<float>().Swap(t.mutable_float_data());
    }
    RETURN_IF_ERROR(ImportInputs(g));
    for (const onnx::NodeProto& node : g.node()) RETURN_IF_ERROR(ImportNode(node));
    for (const onnx::ValueInfoProto& v : g.output()) {
      const std::string name = Resolve(v.name());
      if (shapes_.count(name) == 0) {
        return absl::InvalidArgumentError("graph output '" + v.name() +
                                          "' is not produced by any supported node");
      }
      Shape shape = shapes_[name];
      shape[0] = -1;
      graph_.outputs.push_back({name, shape});
    }
    // Weights the nodes no longer read (Gemm's B before it was normalised,
    // Clip bounds, Pad values) would only take memory.
    std::set<std::string> used;
    for (const Node& node : graph_.nodes) used.insert(node.inputs.begin(), node.inputs.end());
    for (auto it = graph_.initializers.begin(); it != graph_.initializers.end();) {
      it = used.count(it->first) ? std::next(it) : graph_.initializers.erase(it);
    }
    RETURN_IF_ERROR(ValidateGraph(graph_));
    return std::move(graph_);
  }

 private:
  absl::Status AddConstant(const std::string& name, const onnx::TensorProto& t) {
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT: {
        ASSIGN_OR_RETURN(graph_.initializers[name], ConvertFloatTensor(t));
        return absl::OkStatus();
      }
      case onnx::TensorProto::INT64:
      case onnx::TensorProto::INT32: {
        ASSIGN_OR_RETURN(ints_[name], ConvertIntTensor(t));
        if (t.dims_size() > 1) int_shapes_[name] = Shape(t.dims().begin(), t.dims().end());
        return absl::OkStatus();
      }
      default:
        return absl::UnimplementedError(absl::StrCat("tensor '", name, "' has ONNX data type ",
                                                     t.data_type(),
                                                     "; only FLOAT (and INT64 shapes) are supported"));
    }
  }

  absl::Status ImportInputs(const onnx::GraphProto& g) {
    for (const onnx::ValueInfoProto& v : g.input()) {
      if (graph_.IsInitializer(v.name()) || ints_.count(v.name())) continue;  // weights listed as inputs
      const auto& type = v.type().tensor_type();
      if (type.elem_type() != onnx::TensorProto::FLOAT) {
        return absl::UnimplementedError(absl::StrCat("input '", v.name(), "' has ONNX type ",
                                                     type.elem_type(), "; only FLOAT is supported"));
      }
      ValueInfo info{v.name(), {}};
      for (int i = 0; i < type.shape().dim_size(); ++i) {
        const auto& dim = type.shape().dim(i);
        if (i == 0) {
          info.shape.push_back(-1);  // the batch, whatever the file says
          if (dim.has_dim_value() && dim.dim_value() > 0) graph_.nominal_batch = dim.dim_value();
        } else if (dim.has_dim_value() && dim.dim_value() > 0) {
          info.shape.push_back(dim.dim_value());
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              "input '", v.name(), "' dimension ", i,
              " is not fixed; only the batch dimension may be symbolic"));
        }
      }
      if (info.shape.size() < 2) {
        return absl::InvalidArgumentError("input '" + v.name() + "' needs a rank of at least 2");
      }
      Shape nominal = info.shape;
      nominal[0] = graph_.nominal_batch;
      shapes_[info.name] = nominal;
      graph_.inputs.push_back(std::move(info));
    }
    return absl::OkStatus();
  }

  std::string Resolve(const std::string& name) const {
    auto it = aliases_.find(name);
    return it == aliases_.end() ? name : it->second;
  }

  bool IsActivation(const std::string& name) const { return shapes_.count(Resolve(name)) != 0; }

  absl::StatusOr<const Tensor*> Initializer(const onnx::NodeProto& node, int index, bool required) {
    if (node.input_size() <= index || node.input(index).empty()) {
      if (required) return Invalid(node, absl::StrCat("input ", index, " is missing"));
      return nullptr;
    }
    const Tensor* t = graph_.FindInitializer(node.input(index));
    if (t == nullptr) {
      return Unsupported(node, absl::StrCat("input '", node.input(index),
                                            "' must be a constant initializer"));
    }
    return t;
  }

  absl::StatusOr<std::vector<int64_t>> IntInput(const onnx::NodeProto& node, int index) {
    if (node.input_size() <= index) return Invalid(node, absl::StrCat("input ", index, " is missing"));
    auto it = ints_.find(node.input(index));
    if (it == ints_.end()) {
      return Unsupported(node, absl::StrCat("input '", node.input(index),
                                            "' must be a constant integer tensor"));
    }
    return it->second;
  }

  // Appends a node reading `inputs` and computes its output shape.
  absl::Status Emit(const onnx::NodeProto& node, std::vector<std::string> inputs, OpParams params,
                    const std::string& output) {
    Node out;
    out.name = node.name().empty() ? output : node.name();
    for (std::string& in : inputs) {
      if (!in.empty() && !graph_.IsInitializer(in)) in = Resolve(in);
    }
    out.inputs = std::move(inputs);
    out.outputs = {output};
    out.params = std::move(params);
    ASSIGN_OR_RETURN(shapes_[output], InferNodeShape(graph_, out, shapes_));
    graph_.nodes.push_back(std::move(out));
    return absl::OkStatus();
  }

  absl::Status ImportNode(const onnx::NodeProto& node) {
    if (node.output_size() < 1) return Invalid(node, "has no output");
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      return Unsupported(node, "domain '" + node.domain() + "' is not supported");
    }
    const std::string& op = node.op_type();
    if (op == "Constant") return ImportConstant(node);
    if (op == "Transpose" && node.input_size() == 1 && graph_.IsInitializer(node.input(0))) {
      return FoldTranspose(node);
    }
    if (op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Squeeze" || op == "Cast" ||
        (op == "Concat" && !node.input().empty() && ints_.count(node.input(0)))) {
      return FoldShapeOp(node);
    }
    if (op == "ConstantOfShape" ||
        ((op == "Reshape" || op == "Slice" || op == "Transpose") && node.input_size() >= 1 &&
         ints_.count(node.input(0)))) {
      return FoldIntOp(node);
    }
    for (const std::string& in : node.input()) {
      if (!in.empty() && !IsActivation(in) && !graph_.IsInitializer(in) && ints_.count(in) == 0) {
        return Invalid(node, "input '" + in + "' is not produced by any earlier node "
                             "(a dangling edge, or a cycle)");
      }
    }
    if ((op == "Add" || op == "Sum") && node.input_size() == 2 && !IsActivation(node.input(0)) &&
        IsActivation(node.input(1))) {
      onnx::NodeProto swapped = node;  // addition commutes: activation first
      swapped.set_input(0, node.input(1));
      swapped.set_input(1, node.input(0));
      return ImportAdd(swapped);
    }
    if (node.input_size() < 1 || !IsActivation(node.input(0))) {
      return Unsupported(node, "its first input must be an activation computed from the model input");
    }
    const std::string x = node.input(0);
    const std::string y = node.output(0);
    if (op == "Dropout" || op == "Identity") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"ratio", "seed", "is_test"}));
      for (int i = 1; i < node.output_size(); ++i) {
        if (!node.output(i).empty()) return Unsupported(node, "the mask output is not supported");
      }
      aliases_[y] = Resolve(x);
      return absl::OkStatus();
    }
    if (op == "Conv") return ImportConv(node);
    if (op == "MaxPool" || op == "AveragePool") return ImportPool(node);
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
      PoolParams p;
      p.global = true;
      p.kind = op == "GlobalMaxPool" ? PoolParams::Kind::kMax : PoolParams::Kind::kAverage;
      return Emit(node, {x}, p, y);
    }
    if (op == "Relu" || op == "LeakyRelu" || op == "Sigmoid" || op == "Clip") return ImportEltwise(node);
    if (op == "Gemm") return ImportGemm(node);
    if (op == "MatMul") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
      if (node.input_size() != 2) return Invalid(node, "expects 2 inputs");
      return Emit(node, {x, node.input(1)}, MatMulParams{}, y);
    }
    if (op == "Add" || op == "Sum") return ImportAdd(node);
    if (op == "Concat") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
      if (!a.Has("axis")) return Invalid(node, "attribute 'axis' is required");
      for (const std::string& in : node.input()) {
        if (!IsActivation(in)) return Unsupported(node, "constant Concat inputs are not supported");
      }
      return Emit(node, {node.input().begin(), node.input().end()}, ConcatParams{a.Int("axis", 1)}, y);
    }
    if (op == "Flatten") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
      return Emit(node, {x}, FlattenParams{a.Int("axis", 1)}, y);
    }
    if (op == "Reshape") return ImportReshape(node);
    if (op == "Transpose") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"perm"}));
      std::vector<int64_t> perm = a.Ints("perm", {});
      if (perm.empty()) {
        const int64_t rank = shapes_[Resolve(x)].size();
        for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
      }
      return Emit(node, {x}, TransposeParams{perm}, y);
    }
    if (op == "LRN") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"alpha", "beta", "bias", "size"}));
      if (!a.Has("size")) return Invalid(node, "attribute 'size' is required");
      LrnParams p{a.Int("size", 5), a.Float("alpha", 1e-4f), a.Float("beta", 0.75f),
                  a.Float("bias", 1.0f)};
      if (p.size <= 0 || p.size % 2 == 0) {
        return Unsupported(node, absl::StrCat("only odd sizes are supported, got ", p.size));
      }
      return Emit(node, {x}, p, y);
    }
    if (op == "Softmax") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
      SoftmaxParams p;
      p.coerce_2d = opset_ < 13;
      p.axis = a.Int("axis", opset_ < 13 ? 1 : -1);
      return Emit(node, {x}, p, y);
    }
    if (op == "BatchNormalization") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(
                                         node, {"epsilon", "momentum", "training_mode", "spatial",
                                                "is_test", "consumed_inputs"}));
      if (a.Int("training_mode", 0) != 0) return Unsupported(node, "training_mode=1 is not supported");
      if (a.Int("spatial", 1) != 1) return Unsupported(node, "spatial=0 is not supported");
      for (int i = 1; i < node.output_size(); ++i) {
        if (!node.output(i).empty()) return Unsupported(node, "training outputs are not supported");
      }
      if (node.input_size() != 5) return Invalid(node, "expects 5 inputs");
      for (int i = 1; i < 5; ++i) RETURN_IF_ERROR(Initializer(node, i, true).status());
      return Emit(node, {node.input().begin(), node.input().end()},
                  BatchNormParams{a.Float("epsilon", 1e-5f)}, y);
    }
    if (op == "Pad") return ImportPad(node);
    return Unsupported(node, absl::StrCat("op '", op, "' is not supported (supported: ",
                                          kSupportedOps, ")"));
  }

  absl::Status ImportConstant(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"value"}));
    const onnx::TensorProto* t = a.TensorAttr("value");
    if (t == nullptr) return Unsupported(node, "only the 'value' form of Constant is supported");
    return AddConstant(node.output(0), *t);
  }

  // Transpose of a weight (PyTorch exports Linear as Transpose + MatMul at
  // some opsets): done once here.
  absl::Status FoldTranspose(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"perm"}));
    const Tensor& in = *graph_.FindInitializer(node.input(0));
    Tensor out;
    auto data = Permute(in.data, in.shape, a.Ints("perm", {}), &out.shape);
    if (!data.ok()) return Invalid(node, std::string(data.status().message()));
    out.data = *std::move(data);
    graph_.initializers[node.output(0)] = std::move(out);
    return absl::OkStatus();
  }

  // Shape arithmetic on constants (the chains PyTorch exports before a
  // Reshape): evaluated now, with the batch dimension kept symbolic.
  absl::Status FoldShapeOp(const onnx::NodeProto& node) {
    const std::string& op = node.op_type();
    const std::string y = node.output(0);
    if (op == "Shape") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"start", "end"}));
      if (!IsActivation(node.input(0))) return Unsupported(node, "input must be an activation");
      Shape s = shapes_[Resolve(node.input(0))];
      s[0] = kBatch;
      if (a.Has("start") || a.Has("end")) return Unsupported(node, "start/end are not supported");
      ints_[y] = s;
      return absl::OkStatus();
    }
    if (op == "Gather") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
      if (a.Int("axis", 0) != 0) return Unsupported(node, "only axis 0 is supported on shapes");
      ASSIGN_OR_RETURN(std::vector<int64_t> data, IntInput(node, 0));
      ASSIGN_OR_RETURN(std::vector<int64_t> indices, IntInput(node, 1));
      std::vector<int64_t> out;
      for (int64_t i : indices) {
        if (i < 0) i += data.size();
        if (i < 0 || i >= static_cast<int64_t>(data.size())) return Invalid(node, "index out of range");
        out.push_back(data[i]);
      }
      ints_[y] = out;
      return absl::OkStatus();
    }
    if (op == "Unsqueeze" || op == "Squeeze" || op == "Cast") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axes", "to"}));
      ASSIGN_OR_RETURN(ints_[y], IntInput(node, 0));  // a 1-D view of the same values
      if (op == "Cast" && int_shapes_.count(node.input(0))) int_shapes_[y] = int_shapes_[node.input(0)];
      return absl::OkStatus();
    }
    // Concat of shape pieces.
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
    std::vector<int64_t> out;
    for (int i = 0; i < node.input_size(); ++i) {
      ASSIGN_OR_RETURN(std::vector<int64_t> part, IntInput(node, i));
      out.insert(out.end(), part.begin(), part.end());
    }
    ints_[y] = out;
    return absl::OkStatus();
  }

  Shape IntShape(const std::string& name) {
    auto it = int_shapes_.find(name);
    return it != int_shapes_.end() ? it->second : Shape{static_cast<int64_t>(ints_[name].size())};
  }

  // ConstantOfShape, Reshape, Slice and Transpose of constant int tensors:
  // the chain PyTorch writes (opset 11 on) to turn F.pad's list into Pad's
  // pads input.
  absl::Status FoldIntOp(const onnx::NodeProto& node) {
    const std::string& op = node.op_type();
    const std::string y = node.output(0);
    if (op == "ConstantOfShape") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"value"}));
      ASSIGN_OR_RETURN(std::vector<int64_t> shape, IntInput(node, 0));
      int64_t count = 1;
      for (int64_t d : shape) {
        if (d < 0 || d > (1 << 20) || (count *= d) > (1 << 20)) {
          return Unsupported(node, "only small constant shapes are supported");
        }
      }
      std::vector<int64_t> value = {0};
      if (const onnx::TensorProto* t = a.TensorAttr("value")) {
        if (t->data_type() != onnx::TensorProto::INT64 && t->data_type() != onnx::TensorProto::INT32) {
          return Unsupported(node, "only an integer value is supported");
        }
        ASSIGN_OR_RETURN(value, ConvertIntTensor(*t));
        if (value.size() != 1) return Invalid(node, "value must hold one element");
      }
      ints_[y] = std::vector<int64_t>(count, value[0]);
      if (shape.size() != 1) int_shapes_[y] = shape;
      return absl::OkStatus();
    }
    const std::vector<int64_t> data = ints_[node.input(0)];
    const Shape in = IntShape(node.input(0));
    if (op == "Reshape") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"allowzero"}));
      ASSIGN_OR_RETURN(std::vector<int64_t> shape, IntInput(node, 1));
      int64_t known = 1, unknown = -1;
      for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == 0 && i < in.size()) shape[i] = in[i];
        if (shape[i] == -1 && unknown < 0) {
          unknown = i;
        } else if (shape[i] <= 0) {
          return Invalid(node, "a shape of constant ints must have positive dims and at most one -1");
        } else {
          known *= shape[i];
        }
      }
      if (unknown >= 0 && known > 0) shape[unknown] = data.size() / known;
      if (NumElements(shape) != static_cast<int64_t>(data.size())) {
        return Invalid(node, "the new shape does not hold the same number of elements");
      }
      ints_[y] = data;
      int_shapes_[y] = shape;
      return absl::OkStatus();
    }
    if (op == "Transpose") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"perm"}));
      Shape out_shape;
      auto out = Permute(data, in, a.Ints("perm", {}), &out_shape);
      if (!out.ok()) return Invalid(node, std::string(out.status().message()));
      ints_[y] = *std::move(out);
      int_shapes_[y] = out_shape;
      return absl::OkStatus();
    }
    // Slice (opset 10 on: starts, ends, axes, steps as inputs).
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
    ASSIGN_OR_RETURN(std::vector<int64_t> starts, IntInput(node, 1));
    ASSIGN_OR_RETURN(std::vector<int64_t> ends, IntInput(node, 2));
    std::vector<int64_t> axes, steps(starts.size(), 1);
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(i);
    if (node.input_size() > 3 && !node.input(3).empty()) {
      ASSIGN_OR_RETURN(axes, IntInput(node, 3));
    }
    if (node.input_size() > 4 && !node.input(4).empty()) {
      ASSIGN_OR_RETURN(steps, IntInput(node, 4));
    }
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      return Invalid(node, "starts, ends, axes and steps must have the same length");
    }
    const int64_t rank = in.size();
    std::vector<int64_t> first(rank, 0), step(rank, 1);
    Shape out_shape = in;
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
      if (axis < 0 || axis >= rank || steps[i] == 0) return Invalid(node, "axis out of range or step 0");
      const int64_t dim = in[axis];
      int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
      int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
      if (steps[i] > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        out_shape[axis] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        out_shape[axis] = s > e ? (s - e - steps[i] - 1) / -steps[i] : 0;
      }
      first[axis] = s;
      step[axis] = steps[i];
    }
    std::vector<int64_t> strides(rank, 1), out, index(rank, 0);
    for (int i = static_cast<int>(rank) - 2; i >= 0; --i) strides[i] = strides[i + 1] * in[i + 1];
    const int64_t count = NumElements(out_shape);
    for (int64_t flat = 0; flat < count; ++flat) {
      int64_t src = 0;
      for (int64_t d = 0; d < rank; ++d) src += (first[d] + index[d] * step[d]) * strides[d];
      out.push_back(data[src]);
      for (int d = static_cast<int>(rank) - 1; d >= 0 && ++index[d] == out_shape[d]; --d) index[d] = 0;
    }
    ints_[y] = out;
    int_shapes_[y] = out_shape;
    return absl::OkStatus();
  }

  // Reads auto_pad and pads into begin/end pairs for a 2-D window op over `x`.
  absl::Status WindowPads(const onnx::NodeProto& node, const Attributes& a, const std::string& x,
                          const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                          const std::vector<int64_t>& dilations, std::vector<int64_t>* begin,
                          std::vector<int64_t>* end) {
    const std::string auto_pad = a.String("auto_pad", "NOTSET");
    std::vector<int64_t> pads = a.Ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) return Unsupported(node, "only 2-D windows are supported (4 pads)");
    *begin = {pads[0], pads[1]};
    *end = {pads[2], pads[3]};
    if (auto_pad == "NOTSET") return absl::OkStatus();
    *begin = {0, 0};
    *end = {0, 0};
    if (auto_pad == "VALID") return absl::OkStatus();
    if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
      return Invalid(node, "unknown auto_pad '" + auto_pad + "'");
    }
    const Shape& in = shapes_[Resolve(x)];
    if (in.size() != 4) return Invalid(node, "expects a rank-4 NCHW input");
    for (int i = 0; i < 2; ++i) {
      const int64_t out = (in[2 + i] + strides[i] - 1) / strides[i];
      const int64_t total =
          std::max<int64_t>((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in[2 + i], 0);
      (*begin)[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      (*end)[i] = total - (*begin)[i];
    }
    return absl::OkStatus();
  }

  absl::Status ImportConv(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"auto_pad", "dilations", "group",
                                                             "kernel_shape", "pads", "strides"}));
    ASSIGN_OR_RETURN(const Tensor* w, Initializer(node, 1, /*required=*/true));
    ASSIGN_OR_RETURN(const Tensor* b, Initializer(node, 2, /*required=*/false));
    if (w->shape.size() != 4) return Unsupported(node, "only 2-D convolutions are supported");
    ConvParams p;
    p.kernel = a.Ints("kernel_shape", {w->shape[2], w->shape[3]});
    p.strides = a.Ints("strides", {1, 1});
    p.dilations = a.Ints("dilations", {1, 1});
    p.group = a.Int("group", 1);
    p.has_bias = b != nullptr;
    if (p.kernel.size() != 2 || p.strides.size() != 2 || p.dilations.size() != 2) {
      return Invalid(node, "kernel_shape, strides and dilations must have 2 values");
    }
    RETURN_IF_ERROR(WindowPads(node, a, node.input(0), p.kernel, p.strides, p.dilations,
                               &p.pads_begin, &p.pads_end));
    std::vector<std::string> inputs = {node.input(0), node.input(1)};
    if (b != nullptr) inputs.push_back(node.input(2));
    return Emit(node, inputs, p, node.output(0));
  }

  absl::Status ImportPool(const onnx::NodeProto& node) {
    const bool max = node.op_type() == "MaxPool";
    ASSIGN_OR_RETURN(Attributes a,
                     Attributes::Create(node, {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                               "pads", "storage_order", "strides",
                                               "count_include_pad"}));
    if (node.output_size() > 1 && !node.output(1).empty()) {
      return Unsupported(node, "the Indices output is not supported");
    }
    if (a.Int("storage_order", 0) != 0) return Unsupported(node, "storage_order=1 is not supported");
    for (int64_t d : a.Ints("dilations", {1, 1})) {
      if (d != 1) return Unsupported(node, "dilations other than 1 are not supported");
    }
    PoolParams p;
    p.kind = max ? PoolParams::Kind::kMax : PoolParams::Kind::kAverage;
    p.kernel = a.Ints("kernel_shape", {});
    p.strides = a.Ints("strides", {1, 1});
    p.ceil_mode = a.Int("ceil_mode", 0) != 0;
    p.count_include_pad = a.Int("count_include_pad", 0) != 0;
    if (p.kernel.size() != 2 || p.strides.size() != 2) {
      return Unsupported(node, "only 2-D pooling is supported (kernel_shape and strides of 2)");
    }
    RETURN_IF_ERROR(WindowPads(node, a, node.input(0), p.kernel, p.strides, {1, 1}, &p.pads_begin,
                               &p.pads_end));
    return Emit(node, {node.input(0)}, p, node.output(0));
  }

  absl::Status ImportEltwise(const onnx::NodeProto& node) {
    const std::string& op = node.op_type();
    EltwiseParams p;
    if (op == "Relu" || op == "Sigmoid") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
      p.activation.kind = op == "Relu" ? Activation::Kind::kRelu : Activation::Kind::kSigmoid;
    } else if (op == "LeakyRelu") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"alpha"}));
      p.activation = {Activation::Kind::kLeakyRelu, a.Float("alpha", 0.01f), 0};
    } else {  // Clip: attributes before opset 11, optional constant inputs after
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"min", "max"}));
      float lo = a.Float("min", std::numeric_limits<float>::lowest());
      float hi = a.Float("max", std::numeric_limits<float>::max());
      for (int i = 1; i < 3 && i < node.input_size(); ++i) {
        if (node.input(i).empty()) continue;
        ASSIGN_OR_RETURN(const Tensor* t, Initializer(node, i, true));
        if (t->data.size() != 1) return Invalid(node, "min and max must be scalars");
        (i == 1 ? lo : hi) = t->data[0];
      }
      p.activation = {Activation::Kind::kClip, lo, hi};
    }
    return Emit(node, {node.input(0)}, p, node.output(0));
  }

  absl::Status ImportAdd(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
    if (node.input_size() == 1) {  // Sum of one input
      aliases_[node.output(0)] = Resolve(node.input(0));
      return absl::OkStatus();
    }
    // Sum of n inputs: a chain of Adds.
    std::string acc = node.input(0);
    for (int i = 1; i < node.input_size(); ++i) {
      const std::string& rhs = node.input(i);
      if (!IsActivation(rhs) && !graph_.IsInitializer(rhs)) {
        return Unsupported(node, "input '" + rhs + "' must be an activation or a float initializer");
      }
      const std::string out = i + 1 == node.input_size() ? node.output(0)
                                                         : absl::StrCat(node.output(0), "/partial", i);
      RETURN_IF_ERROR(Emit(node, {acc, rhs}, AddParams{}, out));
      acc = out;
    }
    return absl::OkStatus();
  }

  absl::Status ImportReshape(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"allowzero", "shape"}));
    if (a.Int("allowzero", 0) != 0) return Unsupported(node, "allowzero=1 is not supported");
    std::vector<int64_t> shape;
    if (a.Has("shape")) {
      shape = a.Ints("shape", {});  // opset < 5
    } else {
      ASSIGN_OR_RETURN(shape, IntInput(node, 1));
    }
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == kBatch) {
        if (i != 0) return Unsupported(node, "the batch size may only stay in dimension 0");
        shape[i] = 0;  // copy dimension 0: the batch
      }
    }
    return Emit(node, {node.input(0)}, ReshapeParams{shape}, node.output(0));
  }

  absl::Status ImportPad(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"mode", "pads", "value"}));
    if (a.String("mode", "constant") != "constant") {
      return Unsupported(node, "only mode 'constant' is supported");
    }
    std::vector<int64_t> pads;
    float value = a.Float("value", 0.0f);
    if (a.Has("pads")) {
      pads = a.Ints("pads", {});
    } else {
      ASSIGN_OR_RETURN(pads, IntInput(node, 1));
      if (node.input_size() > 2 && !node.input(2).empty()) {
        ASSIGN_OR_RETURN(const Tensor* v, Initializer(node, 2, true));
        if (v->data.size() != 1) return Invalid(node, "constant_value must be a scalar");
        value = v->data[0];
      }
    }
    if (!std::isfinite(value)) return Invalid(node, "the pad value must be finite");
    if (pads.size() != 8 || pads[0] || pads[1] || pads[4] || pads[5]) {
      return Unsupported(node, "only padding of H and W of an NCHW tensor is supported");
    }
    for (int64_t p : pads) {
      if (p < 0) return Unsupported(node, "negative pads (cropping) are not supported");
    }
    return Emit(node, {node.input(0)}, PadParams{{pads[2], pads[3]}, {pads[6], pads[7]}, value},
                node.output(0));
  }

  // Normalises Y = alpha * A * B' + beta * C into W [OC, IC] and bias [OC].
  absl::Status ImportGemm(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(Attributes a,
                     Attributes::Create(node, {"alpha", "beta", "transA", "transB", "broadcast"}));
    std::string x = node.input(0);
    const std::string name = node.name().empty() ? node.output(0) : node.name();
    if (a.Int("transA", 0) != 0) {
      x = name + "/transposed_a";
      RETURN_IF_ERROR(Emit(node, {node.input(0)}, TransposeParams{{1, 0}}, x));
    }
    ASSIGN_OR_RETURN(const Tensor* b, Initializer(node, 1, /*required=*/true));
    ASSIGN_OR_RETURN(const Tensor* c, Initializer(node, 2, /*required=*/false));
    if (b->shape.size() != 2) return Invalid(node, "B must be a rank-2 initializer");
    const bool trans_b = a.Int("transB", 0) != 0;
    const int64_t oc = trans_b ? b->shape[0] : b->shape[1];
    const int64_t ic = trans_b ? b->shape[1] : b->shape[0];
    const float alpha = a.Float("alpha", 1.0f);
    const float beta = a.Float("beta", 1.0f);

    Tensor w{{oc, ic}, std::vector<float>(oc * ic)};
    for (int64_t o = 0; o < oc; ++o) {
      for (int64_t i = 0; i < ic; ++i) {
        w.data[o * ic + i] = alpha * (trans_b ? b->data[o * ic + i] : b->data[i * oc + o]);
      }
    }
    GemmParams p;
    std::vector<std::string> inputs = {x, name + "/weights"};
    if (c != nullptr) {
      // C broadcasts over rows: a scalar, [OC] or [1, OC].
      if (c->data.size() != 1 && (c->shape.empty() || c->shape.back() != oc ||
                                  NumElements(c->shape) != oc)) {
        return Unsupported(node, absl::StrCat("C must broadcast as a bias of ", oc,
                                              " values, got shape ", ShapeToString(c->shape)));
      }
      Tensor bias{{oc}, std::vector<float>(oc)};
      for (int64_t o = 0; o < oc; ++o) bias.data[o] = beta * c->data[c->data.size() == 1 ? 0 : o];
      graph_.initializers[name + "/bias"] = std::move(bias);
      inputs.push_back(name + "/bias");
      p.has_bias = true;
    }
    graph_.initializers[name + "/weights"] = std::move(w);
    return Emit(node, inputs, p, node.output(0));
  }

  Graph graph_;
  int64_t opset_ = 13;
  std::map<std::string, Shape> shapes_;  // activations, batch 1
  std::map<std::string, std::vector<int64_t>> ints_;
  // The shape of each int constant that is not 1-D (PyTorch computes Pad's
  // pads as a [4, 2] tensor, reversed and transposed).
  std::map<std::string, Shape> int_shapes_;
  absl::flat_hash_map<std::string, std::string> aliases_;
};

}  // namespace

namespace {

absl::Status ParseModel(std::string_view bytes, onnx::ModelProto* model) {
  if (bytes.empty()) return absl::InvalidArgumentError("the ONNX model is empty");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("the ONNX model is over 2 GiB; protobuf cannot parse it");
  }
  if (!model->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "the file is not a valid ONNX model (protobuf ModelProto did not parse)");
  }
  if (!model->has_graph() || model->graph().node_size() == 0) {
    return absl::InvalidArgumentError("the ONNX model has no graph nodes");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Graph> ImportOnnx(std::string_view bytes) {
  onnx::ModelProto model;
  RETURN_IF_ERROR(ParseModel(bytes, &model));
  return Importer().Run(model);
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError("cannot open ONNX file '" + path + "'");
  onnx::ModelProto model;
  absl::Status parsed;
  {
    std::string bytes(static_cast<size_t>(in.tellg()), '\0');
    in.seekg(0);
    in.read(bytes.data(), bytes.size());
    parsed = ParseModel(bytes, &model);
  }  // the file's bytes are freed before the weights are converted
  absl::StatusOr<Graph> graph = parsed.ok() ? Importer().Run(model) : absl::StatusOr<Graph>(parsed);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path, ": ", graph.status().message()));
  }
  return graph;
}

}  // namespace cnnserve::engine
