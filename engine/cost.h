// Cost accounting for a graph: per layer, its output shape, parameters,
// multiply-accumulates and activation bytes. Feeds cnnserve-inspect and the
// GFLOP/s figures of cnnserve-bench.
#ifndef CNNSERVE_ENGINE_COST_H_
#define CNNSERVE_ENGINE_COST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace cnnserve::engine {

struct LayerCost {
  std::string name;
  std::string op;  // with fused post-ops, e.g. "Conv+Sum+Relu"
  Shape output;
  int64_t params = 0;
  int64_t macs = 0;
  int64_t activation_bytes = 0;  // the output, fp32
};

absl::StatusOr<std::vector<LayerCost>> GraphCost(const Graph& graph, int64_t batch);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_COST_H_
