#include "engine/onnx_import.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"
#include "onnx/onnx_pb.h"

namespace cnnserve::engine {
namespace {

constexpr char kSupportedOps[] = "Conv, Relu, MaxPool, Flatten, Gemm, Dropout, Identity";

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
    Attributes attrs(node);
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (known.count(a.name()) == 0) {
        return Unsupported(node, absl::StrCat("attribute '", a.name(), "' is not supported"));
      }
      attrs.by_name_[a.name()] = &a;
    }
    return attrs;
  }

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

 private:
  explicit Attributes(const onnx::NodeProto&) {}
  absl::flat_hash_map<std::string, const onnx::AttributeProto*> by_name_;
};

absl::StatusOr<Tensor> ConvertTensor(const onnx::TensorProto& t) {
  const std::string where = absl::StrCat("initializer '", t.name(), "'");
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    return absl::InvalidArgumentError(
        where + " refers to external data; only self-contained .onnx files are accepted");
  }
  if (t.data_type() != onnx::TensorProto::FLOAT) {
    return absl::UnimplementedError(absl::StrCat(where, " has ONNX data type ", t.data_type(),
                                                 "; only FLOAT (1) is supported"));
  }
  Tensor out;
  for (int64_t d : t.dims()) {
    if (d < 0) return absl::InvalidArgumentError(where + " has a negative dimension");
    out.shape.push_back(d);
  }
  // Compare the claimed size with the bytes actually present before allocating.
  const int64_t claimed = NumElements(out.shape);
  const int64_t present = t.has_raw_data()
                              ? static_cast<int64_t>(t.raw_data().size() / sizeof(float))
                              : static_cast<int64_t>(t.float_data_size());
  if (claimed != present ||
      (t.has_raw_data() && t.raw_data().size() % sizeof(float) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has shape ",
                                                   ShapeToString(out.shape), " (", claimed,
                                                   " elements) but holds ", present));
  }
  out.data.resize(claimed);
  if (t.has_raw_data()) {
    std::memcpy(out.data.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    std::copy(t.float_data().begin(), t.float_data().end(), out.data.begin());
  }
  return out;
}

class Importer {
 public:
  absl::StatusOr<Graph> Run(const onnx::ModelProto& model) {
    const onnx::GraphProto& g = model.graph();
    for (const onnx::TensorProto& t : g.initializer()) {
      ASSIGN_OR_RETURN(graph_.initializers[t.name()], ConvertTensor(t));
    }
    RETURN_IF_ERROR(ImportInputs(g));
    for (const onnx::NodeProto& node : g.node()) RETURN_IF_ERROR(ImportNode(node));
    for (const onnx::ValueInfoProto& v : g.output()) {
      graph_.outputs.push_back({Resolve(v.name()), {}});
    }
    RETURN_IF_ERROR(ValidateGraph(graph_));
    ASSIGN_OR_RETURN(auto shapes, InferShapes(graph_, 1));
    for (ValueInfo& out : graph_.outputs) {
      out.shape = shapes[out.name];
      out.shape[0] = -1;
    }
    return std::move(graph_);
  }

 private:
  absl::Status ImportInputs(const onnx::GraphProto& g) {
    for (const onnx::ValueInfoProto& v : g.input()) {
      if (graph_.initializers.count(v.name()) != 0) continue;  // older exports list weights
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
      graph_.inputs.push_back(std::move(info));
    }
    return absl::OkStatus();
  }

  std::string Resolve(const std::string& name) const {
    auto it = aliases_.find(name);
    return it == aliases_.end() ? name : it->second;
  }

  absl::StatusOr<const Tensor*> Initializer(const onnx::NodeProto& node, int index,
                                            bool required) {
    if (node.input_size() <= index || node.input(index).empty()) {
      if (required) return Invalid(node, absl::StrCat("input ", index, " is missing"));
      return nullptr;
    }
    auto it = graph_.initializers.find(node.input(index));
    if (it == graph_.initializers.end()) {
      return Unsupported(node, absl::StrCat("input '", node.input(index),
                                            "' must be a constant initializer"));
    }
    return &it->second;
  }

  absl::Status ImportNode(const onnx::NodeProto& node) {
    if (node.output_size() < 1 || node.input_size() < 1) {
      return Invalid(node, "has no input or no output");
    }
    const std::string& op = node.op_type();
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      return Unsupported(node, "domain '" + node.domain() + "' is not supported");
    }
    if (op == "Dropout" || op == "Identity") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"ratio", "seed", "is_test"}));
      (void)a;
      aliases_[node.output(0)] = Resolve(node.input(0));
      return absl::OkStatus();
    }
    if (op == "Constant") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"value"}));
      (void)a;
      ASSIGN_OR_RETURN(graph_.initializers[node.output(0)],
                       ConvertTensor(node.attribute(0).t()));
      return absl::OkStatus();
    }
    Node out;
    out.name = node.name().empty() ? node.output(0) : node.name();
    out.inputs.push_back(Resolve(node.input(0)));
    out.outputs.push_back(node.output(0));
    if (op == "Conv") {
      RETURN_IF_ERROR(ImportConv(node, out));
    } else if (op == "MaxPool") {
      RETURN_IF_ERROR(ImportMaxPool(node, out));
    } else if (op == "Gemm") {
      RETURN_IF_ERROR(ImportGemm(node, out));
    } else if (op == "Relu") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {}));
      (void)a;
      out.params = ReluParams{};
    } else if (op == "Flatten") {
      ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"axis"}));
      if (a.Int("axis", 1) != 1) return Unsupported(node, "only axis=1 is supported");
      out.params = FlattenParams{};
    } else {
      return Unsupported(node, absl::StrCat("op '", op, "' is not supported (supported: ",
                                            kSupportedOps, ")"));
    }
    graph_.nodes.push_back(std::move(out));
    return absl::OkStatus();
  }

  // Reads auto_pad and pads into begin/end pairs for a 2-D window op.
  absl::Status WindowPads(const onnx::NodeProto& node, const Attributes& a,
                          std::vector<int64_t>* begin, std::vector<int64_t>* end) {
    const std::string auto_pad = a.String("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID") {
      return Unsupported(node, "auto_pad '" + auto_pad + "' is not supported (NOTSET, VALID)");
    }
    std::vector<int64_t> pads = a.Ints("pads", {0, 0, 0, 0});
    if (auto_pad == "VALID") pads = {0, 0, 0, 0};
    if (pads.size() != 4) return Invalid(node, "pads must have 4 values for a 2-D window");
    *begin = {pads[0], pads[1]};
    *end = {pads[2], pads[3]};
    return absl::OkStatus();
  }

  absl::Status ImportConv(const onnx::NodeProto& node, Node& out) {
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
    if (p.kernel.size() != 2 || p.strides.size() != 2 || p.dilations.size() != 2) {
      return Invalid(node, "kernel_shape, strides and dilations must have 2 values");
    }
    RETURN_IF_ERROR(WindowPads(node, a, &p.pads_begin, &p.pads_end));
    out.inputs.push_back(node.input(1));
    if (b != nullptr) out.inputs.push_back(node.input(2));
    out.params = p;
    return absl::OkStatus();
  }

  absl::Status ImportMaxPool(const onnx::NodeProto& node, Node& out) {
    ASSIGN_OR_RETURN(Attributes a, Attributes::Create(node, {"auto_pad", "ceil_mode", "dilations",
                                                             "kernel_shape", "pads",
                                                             "storage_order", "strides"}));
    if (node.output_size() > 1 && !node.output(1).empty()) {
      return Unsupported(node, "the Indices output is not supported");
    }
    if (a.Int("storage_order", 0) != 0) return Unsupported(node, "storage_order=1 is not supported");
    for (int64_t d : a.Ints("dilations", {1, 1})) {
      if (d != 1) return Unsupported(node, "dilations other than 1 are not supported");
    }
    PoolParams p;
    p.kernel = a.Ints("kernel_shape", {});
    p.strides = a.Ints("strides", {1, 1});
    p.ceil_mode = a.Int("ceil_mode", 0) != 0;
    if (p.kernel.size() != 2 || p.strides.size() != 2) {
      return Invalid(node, "kernel_shape and strides must have 2 values");
    }
    RETURN_IF_ERROR(WindowPads(node, a, &p.pads_begin, &p.pads_end));
    out.params = p;
    return absl::OkStatus();
  }

  // Normalises Y = alpha * A * B' + beta * C into W [OC, IC] and bias [OC].
  absl::Status ImportGemm(const onnx::NodeProto& node, Node& out) {
    ASSIGN_OR_RETURN(Attributes a,
                     Attributes::Create(node, {"alpha", "beta", "transA", "transB"}));
    if (a.Int("transA", 0) != 0) return Unsupported(node, "transA=1 is not supported");
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
    const std::string w_name = out.name + "/weights";
    graph_.initializers[w_name] = std::move(w);
    out.inputs.push_back(w_name);
    if (c != nullptr) {
      if (NumElements(c->shape) != oc || c->shape.empty() || c->shape.back() != oc) {
        return Unsupported(node, absl::StrCat("C must be a bias of ", oc,
                                              " values, got shape ", ShapeToString(c->shape)));
      }
      Tensor bias{{oc}, c->data};
      for (float& v : bias.data) v *= beta;
      const std::string b_name = out.name + "/bias";
      graph_.initializers[b_name] = std::move(bias);
      out.inputs.push_back(b_name);
    }
    out.params = GemmParams{};
    return absl::OkStatus();
  }

  Graph graph_;
  absl::flat_hash_map<std::string, std::string> aliases_;
};

}  // namespace

absl::StatusOr<Graph> ImportOnnx(std::string_view bytes) {
  onnx::ModelProto model;
  if (bytes.empty()) return absl::InvalidArgumentError("the ONNX model is empty");
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "the file is not a valid ONNX model (protobuf ModelProto did not parse)");
  }
  if (!model.has_graph() || model.graph().node_size() == 0) {
    return absl::InvalidArgumentError("the ONNX model has no graph nodes");
  }
  return Importer().Run(model);
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open ONNX file '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  absl::StatusOr<Graph> graph = ImportOnnx(bytes.str());
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path, ": ", graph.status().message()));
  }
  return graph;
}

}  // namespace cnnserve::engine
