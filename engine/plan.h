// A Plan is a Graph compiled for one batch size: oneDNN primitives in order,
// the layout of every activation, the weights already reordered into the
// layouts the primitives chose, and a memory plan that places activations
// in one arena, reusing space once a value is dead. Internal to engine/: the
// only header that includes oneDNN, and only engine/*.cc include it.
//
// A Plan is immutable once compiled and shared by every ExecutionContext;
// primitives use scratchpad_mode::user, so they run from any thread with that
// thread's own arena and scratchpad.
#ifndef CNNSERVE_ENGINE_PLAN_H_
#define CNNSERVE_ENGINE_PLAN_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dnnl.hpp"
#include "engine/graph.h"

namespace cnnserve::engine {

// Where a primitive argument lives: an activation slot in the arena, or one
// of the plan's constants (weights and biases).
struct SlotRef {
  bool constant = false;
  int index = 0;
  dnnl::memory::desc md;  // activations: the layout this step reads or writes
};

struct PlanStep {
  dnnl::primitive primitive;                  // empty for a fill
  std::vector<std::pair<int, SlotRef>> args;  // DNNL_ARG_* -> slot
  dnnl::memory::desc scratchpad;              // empty when none is needed
  std::string label;                          // node name, for errors and profiles
  // Set for a step that writes this value over all of its DNNL_ARG_DST
  // (oneDNN has no fill primitive: an eltwise on stale arena bytes would
  // carry their NaNs through).
  std::optional<float> fill;
};

struct PlanOutput {
  int slot = 0;  // plain (row-major) layout
  Shape shape;
};

// Weights (and biases) in the layouts plans asked for, keyed by the graph's
// tensor and the layout, so every plan of a model shares one copy of each.
// Not thread-safe: the Model compiles plans under its lock.
class WeightCache {
 public:
  // The memory for `source` in layout `md`, reordered on first request.
  dnnl::memory Get(const Tensor& source, const dnnl::memory::desc& user_md,
                   const dnnl::memory::desc& md, const dnnl::engine& engine,
                   dnnl::stream& stream);
  size_t bytes() const { return bytes_; }
  // Whether a version of `source` that other layouts can be reordered from
  // is cached, so its plain copy may go. Winograd's transformed weights
  // cannot be reordered back, so they alone do not count.
  bool Holds(const Tensor& source) const;

 private:
  std::map<const Tensor*, std::vector<std::pair<dnnl::memory::desc, dnnl::memory>>> entries_;
  size_t bytes_ = 0;
};

class Plan {
 public:
  static absl::StatusOr<std::unique_ptr<Plan>> Compile(const Graph& graph, int64_t batch,
                                                       const dnnl::engine& engine,
                                                       WeightCache* weights);

  int64_t batch() const { return batch_; }
  int input_slot() const { return 0; }
  const std::vector<PlanStep>& steps() const { return steps_; }
  const std::vector<PlanOutput>& outputs() const { return outputs_; }
  const std::vector<dnnl::memory>& constants() const { return constants_; }
  // Each step's label and the oneDNN implementation it runs
  // ("jit_wino_4x3:avx512_core"; "fill" for a fill), in order.
  std::vector<std::pair<std::string, std::string>> Kernels() const;
  size_t max_scratchpad_bytes() const { return max_scratchpad_bytes_; }
  // Byte offset of each activation slot in the arena, and the arena's size:
  // the peak of live activations, after reuse.
  size_t slot_offset(int slot) const { return slot_offsets_[slot]; }
  size_t arena_bytes() const { return arena_bytes_; }
  // What the activations would take with no reuse, for comparison.
  size_t unplanned_activation_bytes() const { return unplanned_bytes_; }

 private:
  friend class PlanBuilder;
  int64_t batch_ = 0;
  std::vector<dnnl::memory::desc> slots_;  // the layout that sizes each slot
  std::vector<dnnl::memory> constants_;
  std::vector<PlanStep> steps_;
  std::vector<PlanOutput> outputs_;
  std::vector<size_t> slot_offsets_;
  size_t arena_bytes_ = 0;
  size_t unplanned_bytes_ = 0;
  size_t max_scratchpad_bytes_ = 0;
};

// The 3x3, stride-1 convolutions of `graph` (by node name) that run as
// Winograd rather than directly: the largest outputs first, one output size
// at a time, while their transformed weights (4x the bytes) stay within a
// quarter of the model's.
std::set<std::string> WinogradConvs(const Graph& graph, const std::map<std::string, Shape>& shapes);

// Places intervals [first, last] of `sizes` bytes in one arena so that no
// two live at once overlap; returns the offsets and sets *arena to the total.
// Greedy by size, lowest offset first; offsets are 64-byte aligned.
std::vector<size_t> PlanArena(const std::vector<size_t>& sizes,
                              const std::vector<std::pair<int, int>>& lifetimes, size_t* arena);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_PLAN_H_
