// A Plan is a Graph compiled for one batch size: oneDNN primitives in order,
// the memory descriptors of every activation, and the weights already
// reordered into the layouts the primitives chose. Internal to engine/: it is
// the only header that includes oneDNN, and only engine/*.cc include it.
//
// A Plan is immutable once compiled and shared by every ExecutionContext;
// primitives use scratchpad_mode::user, so they run from any thread with that
// thread's own scratchpad and activation memory.
#ifndef CNNSERVE_ENGINE_PLAN_H_
#define CNNSERVE_ENGINE_PLAN_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dnnl.hpp"
#include "engine/graph.h"

namespace cnnserve::engine {

// Where a primitive argument lives: in the context's activations, or in the
// plan's constants (weights and biases).
struct SlotRef {
  bool constant = false;
  int index = 0;
  dnnl::memory::desc md;  // activations: the layout this step reads or writes
};

struct PlanStep {
  dnnl::primitive primitive;
  std::vector<std::pair<int, SlotRef>> args;  // DNNL_ARG_* -> slot
  dnnl::memory::desc scratchpad;              // empty when none is needed
  std::string label;                          // node name, for errors and profiles
};

struct PlanOutput {
  int slot = 0;  // plain (row-major) layout
  Shape shape;
};

class Plan {
 public:
  static absl::StatusOr<std::unique_ptr<Plan>> Compile(const Graph& graph, int64_t batch,
                                                       const dnnl::engine& engine);

  int64_t batch() const { return batch_; }
  int input_slot() const { return 0; }
  const Shape& input_shape() const { return input_shape_; }
  const std::vector<dnnl::memory::desc>& activations() const { return activations_; }
  const std::vector<dnnl::memory>& constants() const { return constants_; }
  const std::vector<PlanStep>& steps() const { return steps_; }
  const std::vector<PlanOutput>& outputs() const { return outputs_; }
  size_t max_scratchpad_bytes() const { return max_scratchpad_bytes_; }

 private:
  friend class PlanBuilder;
  int64_t batch_ = 0;
  Shape input_shape_;
  std::vector<dnnl::memory::desc> activations_;
  std::vector<dnnl::memory> constants_;
  std::vector<PlanStep> steps_;
  std::vector<PlanOutput> outputs_;
  size_t max_scratchpad_bytes_ = 0;
};

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_PLAN_H_
