#include "engine/onnx_rewrite.h"

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace cnnserve::engine {
namespace {

// Who produces each value, and the scalar float constants, of one graph.
class GraphIndex {
 public:
  explicit GraphIndex(const onnx::GraphProto& g) : graph_(g) {
    for (int i = 0; i < g.node_size(); ++i) {
      for (const std::string& out : g.node(i).output()) producer_[out] = i;
    }
    for (const onnx::TensorProto& t : g.initializer()) constants_[t.name()] = &t;
    for (const onnx::NodeProto& n : g.node()) {
      if (n.op_type() != "Constant" || n.output_size() != 1) continue;
      for (const onnx::AttributeProto& a : n.attribute()) {
        if (a.name() == "value" && a.has_t()) constants_[n.output(0)] = &a.t();
      }
    }
  }

  // The node producing `name` when it is a `op` node.
  const onnx::NodeProto* Producer(const std::string& name, const std::string& op) const {
    auto it = producer_.find(name);
    if (it == producer_.end()) return nullptr;
    const onnx::NodeProto& n = graph_.node(it->second);
    return n.op_type() == op ? &n : nullptr;
  }
  const onnx::NodeProto* AnyProducer(const std::string& name) const {
    auto it = producer_.find(name);
    return it == producer_.end() ? nullptr : &graph_.node(it->second);
  }

  std::optional<float> Scalar(const std::string& name) const {
    auto it = constants_.find(name);
    if (it == constants_.end()) return std::nullopt;
    const onnx::TensorProto& t = *it->second;
    if (t.data_type() != onnx::TensorProto::FLOAT || t.dims_size() > 1 ||
        (t.dims_size() == 1 && t.dims(0) != 1)) {
      return std::nullopt;
    }
    if (t.float_data_size() == 1) return t.float_data(0);
    if (t.raw_data().size() != sizeof(float)) return std::nullopt;
    float v;
    std::memcpy(&v, t.raw_data().data(), sizeof v);
    return v;
  }

  // For a binary op with one scalar-constant input: that scalar and the other input.
  std::optional<std::pair<float, std::string>> ScalarOperand(const onnx::NodeProto* n) const {
    if (n == nullptr || n->input_size() != 2) return std::nullopt;
    for (int i = 0; i < 2; ++i) {
      if (auto v = Scalar(n->input(i))) return std::make_pair(*v, n->input(1 - i));
    }
    return std::nullopt;
  }

 private:
  const onnx::GraphProto& graph_;
  std::map<std::string, int> producer_;
  std::map<std::string, const onnx::TensorProto*> constants_;
};

std::vector<int64_t> Ints(const onnx::NodeProto& n, const std::string& name) {
  for (const onnx::AttributeProto& a : n.attribute()) {
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  }
  return {};
}

// The value an If node passes on from the enclosing graph: the input of the
// Squeeze in its then-branch (PyTorch squeezes the channel axis only when
// it is 1, so it writes an If around the Squeeze).
std::optional<std::string> IfPassThrough(const onnx::NodeProto& n) {
  for (const onnx::AttributeProto& a : n.attribute()) {
    if (a.name() != "then_branch") continue;
    for (const onnx::NodeProto& inner : a.g().node()) {
      if (inner.op_type() == "Squeeze" && inner.input_size() >= 1) return inner.input(0);
    }
  }
  return std::nullopt;
}

struct Lrn {
  std::string x;
  int64_t size;
  float alpha, beta, bias;
};

// Matches Div(x, Pow(Add(Mul(S, alpha), k), beta)) where S is the average
// over a [size, 1, 1] window of x*x viewed in 5-D, reached through the
// reshapes, pads and squeezes PyTorch writes around it.
std::optional<Lrn> MatchLrn(const GraphIndex& index, const onnx::NodeProto& div) {
  if (div.input_size() != 2) return std::nullopt;
  const onnx::NodeProto* pow = index.Producer(div.input(1), "Pow");
  if (pow == nullptr || pow->input_size() != 2) return std::nullopt;
  const std::optional<float> beta = index.Scalar(pow->input(1));
  const auto add = index.ScalarOperand(index.Producer(pow->input(0), "Add"));
  if (!beta || !add) return std::nullopt;
  const auto mul = index.ScalarOperand(index.Producer(add->second, "Mul"));
  if (!mul) return std::nullopt;
  std::string s = mul->second;
  const onnx::NodeProto* pool = nullptr;
  for (int hops = 0; hops < 6 && pool == nullptr; ++hops) {
    const onnx::NodeProto* n = index.AnyProducer(s);
    if (n == nullptr || n->input_size() < 1) return std::nullopt;
    if (n->op_type() == "AveragePool") {
      pool = n;
    } else if (n->op_type() == "If") {
      const std::optional<std::string> inner = IfPassThrough(*n);
      if (!inner) return std::nullopt;
      s = *inner;
    } else if (n->op_type() == "Reshape" || n->op_type() == "Squeeze" || n->op_type() == "Identity") {
      s = n->input(0);
    } else {
      return std::nullopt;
    }
  }
  if (pool == nullptr) return std::nullopt;
  const std::vector<int64_t> kernel = Ints(*pool, "kernel_shape");
  const std::vector<int64_t> strides = Ints(*pool, "strides");
  if (kernel.size() != 3 || kernel[1] != 1 || kernel[2] != 1 || kernel[0] < 1) return std::nullopt;
  for (int64_t st : strides) {
    if (st != 1) return std::nullopt;
  }
  s = pool->input(0);
  for (int hops = 0; hops < 6; ++hops) {
    const onnx::NodeProto* n = index.AnyProducer(s);
    if (n == nullptr || n->input_size() < 1) return std::nullopt;
    if (n->op_type() == "Mul") {
      if (n->input_size() == 2 && n->input(0) == div.input(0) && n->input(1) == div.input(0)) {
        return Lrn{div.input(0), kernel[0], mul->first, *beta, add->first};
      }
      return std::nullopt;
    }
    if (n->op_type() != "Pad" && n->op_type() != "Reshape" && n->op_type() != "Unsqueeze") {
      return std::nullopt;
    }
    s = n->input(0);
  }
  return std::nullopt;
}

// Names read by `n`, including those its subgraphs read from outside them.
void AddReads(const onnx::NodeProto& n, std::set<std::string>& names) {
  names.insert(n.input().begin(), n.input().end());
  for (const onnx::AttributeProto& a : n.attribute()) {
    if (a.has_g()) {
      for (const onnx::NodeProto& inner : a.g().node()) AddReads(inner, names);
    }
  }
}

// Which nodes feed a graph output (the graph is in topological order).
std::vector<bool> Live(const onnx::GraphProto& g) {
  std::set<std::string> needed;
  for (const onnx::ValueInfoProto& v : g.output()) needed.insert(v.name());
  std::vector<bool> live(g.node_size(), false);
  for (int i = g.node_size() - 1; i >= 0; --i) {
    for (const std::string& out : g.node(i).output()) live[i] = live[i] || needed.count(out) != 0;
    if (live[i]) AddReads(g.node(i), needed);
  }
  return live;
}

onnx::AttributeProto* AddAttribute(onnx::NodeProto& n, const std::string& name,
                                   onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}

}  // namespace

absl::StatusOr<int> RecognizeTorchLrn(onnx::GraphProto& graph) {
  std::vector<std::pair<int, Lrn>> found;
  {
    const GraphIndex index(graph);
    for (int i = 0; i < graph.node_size(); ++i) {
      if (graph.node(i).op_type() != "Div") continue;
      if (std::optional<Lrn> lrn = MatchLrn(index, graph.node(i))) {
        if (lrn->size % 2 == 0) {
          return absl::UnimplementedError(absl::StrCat(
              "node '", graph.node(i).name(), "' (Div): PyTorch's LocalResponseNorm with the even size ",
              lrn->size, " is not supported (its window is centred one channel lower than ONNX LRN's); "
              "odd sizes are"));
        }
        found.push_back({i, *lrn});
      }
    }
  }
  if (found.empty()) return 0;
  const std::vector<bool> live_before = Live(graph);
  for (const auto& [i, lrn] : found) {
    onnx::NodeProto& n = *graph.mutable_node(i);
    n.set_op_type("LRN");
    n.clear_input();
    n.add_input(lrn.x);
    n.clear_attribute();
    AddAttribute(n, "size", onnx::AttributeProto::INT)->set_i(lrn.size);
    AddAttribute(n, "alpha", onnx::AttributeProto::FLOAT)->set_f(lrn.alpha);
    AddAttribute(n, "beta", onnx::AttributeProto::FLOAT)->set_f(lrn.beta);
    AddAttribute(n, "bias", onnx::AttributeProto::FLOAT)->set_f(lrn.bias);
  }
  // Drop what only the decomposition read; nodes that were already dead stay
  // (and are checked) as before.
  const std::vector<bool> live_after = Live(graph);
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (int i = 0; i < graph.node_size(); ++i) {
    if (live_before[i] && !live_after[i]) continue;
    kept.Add()->Swap(graph.mutable_node(i));
  }
  graph.mutable_node()->Swap(&kept);
  return static_cast<int>(found.size());
}

}  // namespace cnnserve::engine
