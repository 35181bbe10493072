#include "engine/passes.h"

#include <map>
#include <string>

namespace cnnserve::engine {
namespace {

Activation* FusableActivation(Node& node) {
  if (auto* conv = std::get_if<ConvParams>(&node.params)) return &conv->activation;
  if (auto* gemm = std::get_if<GemmParams>(&node.params)) return &gemm->activation;
  return nullptr;
}

}  // namespace

int FuseActivations(Graph& graph) {
  std::map<std::string, int> consumers;
  for (const Node& node : graph.nodes) {
    for (const std::string& in : node.inputs) ++consumers[in];
  }
  for (const ValueInfo& out : graph.outputs) ++consumers[out.name];

  std::map<std::string, size_t> producer;
  std::vector<Node> kept;
  int fused = 0;
  for (Node& node : graph.nodes) {
    if (std::holds_alternative<ReluParams>(node.params)) {
      auto it = producer.find(node.inputs[0]);
      if (it != producer.end() && consumers[node.inputs[0]] == 1) {
        Node& prev = kept[it->second];
        Activation* act = FusableActivation(prev);
        if (act != nullptr && *act == Activation::kNone) {
          *act = Activation::kRelu;
          producer.erase(it);
          prev.outputs[0] = node.outputs[0];
          producer[prev.outputs[0]] = &prev - kept.data();
          ++fused;
          continue;
        }
      }
    }
    producer[node.outputs[0]] = kept.size();
    kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  return fused;
}

void OptimizeGraph(Graph& graph) { FuseActivations(graph); }

}  // namespace cnnserve::engine
