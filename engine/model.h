// engine::Model: a loaded, optimised graph that runs batches on oneDNN.
//
// A Model is shared and read-only after Load: Run() is thread-safe as long as
// each thread passes its own ExecutionContext. Plans are compiled per batch
// size on first use and cached for the life of the Model. No oneDNN type
// appears here; engine/plan.h holds them.
//
// Status codes: Load gives NOT_FOUND (no file), INVALID_ARGUMENT (malformed
// model) or UNIMPLEMENTED (unsupported op); Run gives INVALID_ARGUMENT for an
// input of the wrong size and INTERNAL if oneDNN fails.
#ifndef CNNSERVE_ENGINE_MODEL_H_
#define CNNSERVE_ENGINE_MODEL_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace cnnserve::engine {

class Plan;
class WeightCache;
struct EngineHandle;

// Per-worker memory for running a Model: an activation arena and a
// scratchpad per lane (a sub-batch run at once), sized to the largest batch
// it has run and shared by every batch size. Not thread-safe: one context
// per thread. Created by Model::CreateContext and valid only with that Model.
class ExecutionContext {
 public:
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  // How many threads its runs use (all cores when it was created with 0).
  int threads() const;
  // Bytes of activation arenas and scratchpads it holds now.
  size_t memory_bytes() const;

 private:
  friend class Model;
  struct Impl;
  explicit ExecutionContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "2.6.3": the oneDNN the engine runs on, for build info.
std::string OneDnnVersion();

class Model {
 public:
  // Imports an .onnx file, or builds "zoo:NAME", and runs the graph passes.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path);
  // Takes an already built graph (importers, tests, the zoo).
  static absl::StatusOr<std::unique_ptr<Model>> FromGraph(Graph graph);
  ~Model();

  // Declared shapes; dimension 0 is -1 (any batch size).
  const ValueInfo& input() const { return graph_.inputs[0]; }
  const std::vector<ValueInfo>& outputs() const { return graph_.outputs; }
  // The optimised graph. Weight values are released after load (shapes stay).
  const Graph& graph() const { return graph_; }

  // A context owns per-worker memory (activations, scratchpad); use one per
  // thread. `threads` > 0 sets how many OpenMP threads its runs use (0: all).
  std::unique_ptr<ExecutionContext> CreateContext(int threads = 0) const;

  // Compiles the plans a Run of `batch` on `threads` (0: all) uses now
  // rather than on that first Run (a large batch runs as single-threaded
  // sub-batches, so those are the plans compiled).
  absl::Status Prepare(int64_t batch, int threads = 0) const;

  // Bytes of the activation arena a context needs at `batch` (after the
  // liveness planner), and what it would need with no reuse.
  absl::StatusOr<std::pair<size_t, size_t>> ActivationBytes(int64_t batch) const;

  // The oneDNN implementation each step of the plan for `batch` on
  // `threads` (0: all) runs, as (node name, kernel) in execution order:
  // which convolutions run as Winograd, which fell back to reference code.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Kernels(int64_t batch,
                                                                           int threads = 0) const;

  // Bytes of weights held in the layouts the compiled plans use (a weight
  // two plans want in different layouts counts twice).
  size_t WeightBytes() const;

  // Runs `batch` items. `input` holds batch x input().shape[1:] floats, row-major.
  // `outputs` receives one tensor per model output, in outputs() order.
  absl::Status Run(ExecutionContext& context, int64_t batch, absl::Span<const float> input,
                   std::vector<Tensor>* outputs) const;

 private:
  Model(Graph graph, std::unique_ptr<EngineHandle> engine);
  // Frees the graph's plain copy of every weight the cache holds: later
  // plans reorder from the cached copy, so each weight is in memory once.
  void ReleasePlainWeights();
  // Plans are per (batch, threads): oneDNN fixes a primitive's parallel
  // decomposition when it is created.
  absl::StatusOr<const Plan*> PlanFor(int64_t batch, int threads) const;
  // Whether Run splits `batch` into one single-threaded sub-batch per thread.
  bool SplitsAcrossThreads(int64_t batch, int threads) const;

  Graph graph_;
  std::unique_ptr<EngineHandle> engine_;
  mutable absl::Mutex mu_;
  mutable std::map<std::pair<int64_t, int>, std::unique_ptr<Plan>> plans_ ABSL_GUARDED_BY(mu_);
  mutable std::unique_ptr<WeightCache> weights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_MODEL_H_
