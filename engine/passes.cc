#include "engine/passes.h"

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace cnnserve::engine {
namespace {

std::map<std::string, int> CountConsumers(const Graph& graph) {
  std::map<std::string, int> consumers;
  for (const Node& node : graph.nodes) {
    for (const std::string& in : node.inputs) ++consumers[in];
  }
  for (const ValueInfo& out : graph.outputs) ++consumers[out.name];
  return consumers;
}

// The node producing `value` if only `one` consumer reads it, else null.
Node* SoleProducer(std::vector<Node>& nodes, const std::map<std::string, int>& consumers,
                   const std::string& value) {
  auto c = consumers.find(value);
  if (c == consumers.end() || c->second != 1) return nullptr;
  for (Node& n : nodes) {
    if (n.outputs[0] == value) return &n;
  }
  return nullptr;
}

std::string UniqueName(const Graph& graph, const std::string& base) {
  std::string name = base;
  for (int i = 1; graph.IsInitializer(name); ++i) name = absl::StrCat(base, "_", i);
  return name;
}

// Per-channel scale and shift equivalent to an inference BatchNormalization.
void BatchNormAffine(const Graph& graph, const Node& bn, std::vector<float>* scale,
                     std::vector<float>* shift) {
  const float eps = std::get<BatchNormParams>(bn.params).epsilon;
  const Tensor& gamma = *graph.FindInitializer(bn.inputs[1]);
  const Tensor& beta = *graph.FindInitializer(bn.inputs[2]);
  const Tensor& mean = *graph.FindInitializer(bn.inputs[3]);
  const Tensor& var = *graph.FindInitializer(bn.inputs[4]);
  for (size_t c = 0; c < gamma.data.size(); ++c) {
    const float s = gamma.data[c] / std::sqrt(var.data[c] + eps);
    scale->push_back(s);
    shift->push_back(beta.data[c] - mean.data[c] * s);
  }
}

}  // namespace

int FoldBatchNorm(Graph& graph) {
  const std::map<std::string, int> consumers = CountConsumers(graph);
  auto shapes = InferShapes(graph, graph.nominal_batch);
  std::vector<Node> kept;
  int folded = 0;
  for (Node& node : graph.nodes) {
    if (!std::holds_alternative<BatchNormParams>(node.params)) {
      kept.push_back(std::move(node));
      continue;
    }
    std::vector<float> scale, shift;
    BatchNormAffine(graph, node, &scale, &shift);
    Node* conv = SoleProducer(kept, consumers, node.inputs[0]);
    auto* cp = conv != nullptr ? std::get_if<ConvParams>(&conv->params) : nullptr;
    if (cp != nullptr && cp->post_ops.empty()) {
      const Tensor& w = *graph.FindInitializer(conv->inputs[1]);
      Tensor new_w = w;
      const int64_t per_oc = NumElements(w.shape) / w.shape[0];
      for (int64_t o = 0; o < w.shape[0]; ++o) {
        for (int64_t i = 0; i < per_oc; ++i) new_w.data[o * per_oc + i] *= scale[o];
      }
      Tensor new_b{{w.shape[0]}, shift};
      if (cp->has_bias) {
        const Tensor& b = *graph.FindInitializer(conv->inputs[2]);
        for (int64_t o = 0; o < w.shape[0]; ++o) new_b.data[o] += b.data[o] * scale[o];
      }
      const std::string w_name = UniqueName(graph, conv->name + "/bn_folded_weights");
      graph.initializers[w_name] = std::move(new_w);
      const std::string b_name = UniqueName(graph, conv->name + "/bn_folded_bias");
      graph.initializers[b_name] = std::move(new_b);
      conv->inputs.resize(2);
      conv->inputs[1] = w_name;
      conv->inputs.push_back(b_name);
      cp->has_bias = true;
      conv->outputs[0] = node.outputs[0];
      ++folded;
      continue;
    }
    // Standalone: a depthwise 1x1 convolution with the same per-channel affine.
    const int64_t channels = scale.size();
    if (!shapes.ok() || (*shapes)[node.inputs[0]].size() != 4) {
      kept.push_back(std::move(node));  // left for OptimizeGraph to refuse
      continue;
    }
    ConvParams p;
    p.kernel = {1, 1};
    p.strides = {1, 1};
    p.dilations = {1, 1};
    p.pads_begin = {0, 0};
    p.pads_end = {0, 0};
    p.group = channels;
    p.has_bias = true;
    const std::string w_name = UniqueName(graph, node.name + "/scale");
    const std::string b_name = UniqueName(graph, node.name + "/shift");
    graph.initializers[w_name] = Tensor{{channels, 1, 1, 1}, scale};
    graph.initializers[b_name] = Tensor{{channels}, shift};
    kept.push_back(Node{node.name, {node.inputs[0], w_name, b_name}, node.outputs, p});
  }
  graph.nodes = std::move(kept);
  return folded;
}

int FoldPads(Graph& graph) {
  const std::map<std::string, int> consumers = CountConsumers(graph);
  std::map<std::string, const Node*> pad_of;  // pad output -> pad node
  for (const Node& node : graph.nodes) {
    if (std::holds_alternative<PadParams>(node.params)) pad_of[node.outputs[0]] = &node;
  }
  std::map<std::string, const Node*> folded_pads;
  for (Node& node : graph.nodes) {
    auto it = pad_of.find(node.inputs[0]);
    if (it == pad_of.end() || consumers.at(node.inputs[0]) != 1) continue;
    const PadParams& pad = std::get<PadParams>(it->second->params);
    if (pad.value != 0.0f) continue;
    std::vector<int64_t>*begin = nullptr, *end = nullptr;
    if (auto* conv = std::get_if<ConvParams>(&node.params)) {
      begin = &conv->pads_begin;
      end = &conv->pads_end;
    } else if (auto* pool = std::get_if<PoolParams>(&node.params)) {
      const bool zero_pads = pool->pads_begin == std::vector<int64_t>{0, 0} &&
                             pool->pads_end == std::vector<int64_t>{0, 0};
      // Zeros that count in the average are exactly count_include_pad.
      if (pool->kind != PoolParams::Kind::kAverage || pool->global ||
          !(zero_pads || pool->count_include_pad)) {
        continue;
      }
      pool->count_include_pad = true;
      begin = &pool->pads_begin;
      end = &pool->pads_end;
    } else {
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      (*begin)[i] += pad.pads_begin[i];
      (*end)[i] += pad.pads_end[i];
    }
    folded_pads[it->first] = it->second;
    node.inputs[0] = it->second->inputs[0];
  }
  std::vector<Node> kept;
  for (Node& node : graph.nodes) {
    if (folded_pads.count(node.outputs[0]) == 0) kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  return folded_pads.size();
}

int FusePostOps(Graph& graph) {
  const std::map<std::string, int> consumers = CountConsumers(graph);
  auto shapes = InferShapes(graph, graph.nominal_batch);
  if (!shapes.ok()) return 0;
  std::vector<Node> kept;
  int fused = 0;
  for (Node& node : graph.nodes) {
    if (const auto* e = std::get_if<EltwiseParams>(&node.params)) {
      Node* prev = SoleProducer(kept, consumers, node.inputs[0]);
      std::vector<PostOp>* ops = nullptr;
      if (prev != nullptr) {
        if (auto* c = std::get_if<ConvParams>(&prev->params)) ops = &c->post_ops;
        if (auto* g = std::get_if<GemmParams>(&prev->params)) ops = &g->post_ops;
      }
      if (ops != nullptr) {
        ops->push_back(PostOp{false, e->activation});
        prev->outputs[0] = node.outputs[0];
        ++fused;
        continue;
      }
    }
    if (std::holds_alternative<AddParams>(node.params) && node.inputs.size() == 2 &&
        !graph.IsInitializer(node.inputs[0]) && !graph.IsInitializer(node.inputs[1]) &&
        (*shapes)[node.inputs[0]] == (*shapes)[node.inputs[1]]) {
      bool done = false;
      for (int j = 0; j < 2 && !done; ++j) {
        Node* conv = SoleProducer(kept, consumers, node.inputs[j]);
        auto* cp = conv != nullptr ? std::get_if<ConvParams>(&conv->params) : nullptr;
        if (cp == nullptr) continue;
        bool has_sum = false;
        for (const PostOp& op : cp->post_ops) has_sum = has_sum || op.is_sum;
        if (has_sum) continue;
        cp->post_ops.push_back(PostOp{true, {}});
        conv->inputs.push_back(node.inputs[1 - j]);
        conv->outputs[0] = node.outputs[0];
        // Move the conv to the Add's place, after its residual is computed.
        Node moved = std::move(*conv);
        kept.erase(kept.begin() + (conv - kept.data()));
        kept.push_back(std::move(moved));
        done = true;
      }
      if (done) {
        ++fused;
        continue;
      }
    }
    kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  return fused;
}

int DropUnreadInitializers(Graph& graph) {
  std::set<std::string> read;
  for (const Node& node : graph.nodes) read.insert(node.inputs.begin(), node.inputs.end());
  int dropped = 0;
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    if (read.count(it->first) > 0) {
      ++it;
    } else {
      it = graph.initializers.erase(it);
      ++dropped;
    }
  }
  return dropped;
}

absl::Status OptimizeGraph(Graph& graph) {
  RETURN_IF_ERROR(ValidateGraph(graph));
  FoldBatchNorm(graph);
  FoldPads(graph);
  FusePostOps(graph);
  DropUnreadInitializers(graph);
  for (const Node& node : graph.nodes) {
    if (std::holds_alternative<BatchNormParams>(node.params)) {
      return absl::UnimplementedError(absl::StrCat(
          "node '", node.name, "' (BatchNormalization): only NCHW inputs are supported"));
    }
  }
  return ValidateGraph(graph);
}

}  // namespace cnnserve::engine
