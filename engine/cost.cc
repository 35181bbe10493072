#include "engine/cost.h"

#include "engine/status_macros.h"

namespace cnnserve::engine {
namespace {

std::string PostOpSuffix(const std::vector<PostOp>& ops) {
  std::string s;
  for (const PostOp& op : ops) {
    s += op.is_sum ? "+Sum" : "+" + OpName(EltwiseParams{op.activation});
  }
  return s;
}

}  // namespace

absl::StatusOr<std::vector<LayerCost>> GraphCost(const Graph& graph, int64_t batch) {
  ASSIGN_OR_RETURN(auto shapes, InferShapes(graph, batch));
  std::vector<LayerCost> layers;
  for (const Node& node : graph.nodes) {
    LayerCost c;
    c.name = node.name;
    c.op = OpName(node.params);
    c.output = shapes[node.outputs[0]];
    c.activation_bytes = NumElements(c.output) * sizeof(float);
    for (const std::string& in : node.inputs) {
      if (const Tensor* t = graph.FindInitializer(in)) c.params += NumElements(t->shape);
    }
    if (const auto* p = std::get_if<ConvParams>(&node.params)) {
      const Shape& w = graph.FindInitializer(node.inputs[1])->shape;
      c.macs = NumElements(c.output) * w[1] * w[2] * w[3];
      c.op += PostOpSuffix(p->post_ops);
    } else if (const auto* p = std::get_if<GemmParams>(&node.params)) {
      const Shape& w = graph.FindInitializer(node.inputs[1])->shape;
      c.macs = c.output[0] * w[0] * w[1];
      c.op += PostOpSuffix(p->post_ops);
    } else if (std::holds_alternative<MatMulParams>(node.params)) {
      const Shape& a = shapes.count(node.inputs[0]) ? shapes[node.inputs[0]]
                                                    : graph.FindInitializer(node.inputs[0])->shape;
      c.macs = NumElements(c.output) * a.back();
    }
    layers.push_back(std::move(c));
  }
  return layers;
}

}  // namespace cnnserve::engine
