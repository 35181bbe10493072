// Graph rewrites run once at load, before any plan is compiled. Each keeps
// the graph's results the same (up to float rounding) and makes it cheaper.
#ifndef CNNSERVE_ENGINE_PASSES_H_
#define CNNSERVE_ENGINE_PASSES_H_

#include "engine/graph.h"

namespace cnnserve::engine {

// Folds a Relu into the Conv or Gemm that feeds it, when the Relu is that
// op's only consumer, so oneDNN applies it as a post-op. Returns how many
// Relu nodes were folded.
int FuseActivations(Graph& graph);

// All passes, in order.
void OptimizeGraph(Graph& graph);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_PASSES_H_
