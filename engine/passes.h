// Graph rewrites run once at load, before any plan is compiled. Each keeps
// the graph's results the same (up to float rounding) and makes it cheaper
// or simpler to lower to oneDNN.
#ifndef CNNSERVE_ENGINE_PASSES_H_
#define CNNSERVE_ENGINE_PASSES_H_

#include "absl/status/status.h"
#include "engine/graph.h"

namespace cnnserve::engine {

// Folds each BatchNormalization into the Conv before it when the Conv's
// output feeds nothing else; any other BatchNormalization becomes a
// depthwise 1x1 Conv. Returns how many were folded.
int FoldBatchNorm(Graph& graph);

// Folds a zero Pad of H and W into the Conv or AveragePool it feeds.
// Returns how many were folded.
int FoldPads(Graph& graph);

// Fuses into a Conv or Gemm the activations that follow it, and into a Conv
// the residual Add that follows it (as a oneDNN sum post-op). A fused node
// moves to where the Add was, so the residual is computed before it runs.
// Returns how many nodes were fused away.
int FusePostOps(Graph& graph);

// Erases the weights no node reads any more (a convolution's and its
// BatchNorm's once folded), which would otherwise stay in memory for the
// life of the model. Returns how many.
int DropUnreadInitializers(Graph& graph);

// All passes, in order. Fails (UNIMPLEMENTED) if an op remains that no plan
// can run, e.g. a Pad that feeds neither a Conv nor an AveragePool.
absl::Status OptimizeGraph(Graph& graph);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_PASSES_H_
