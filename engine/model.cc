#include "engine/model.h"

#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/fresh_thread.h"
#include "engine/onnx_import.h"
#include "engine/passes.h"
#include "engine/plan.h"
#include "engine/status_macros.h"
#include "engine/zoo.h"
#include "absl/strings/match.h"

namespace cnnserve::engine {

struct EngineHandle {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
};

// Per-worker state: for each lane (a sub-batch running at once), one
// activation arena and one scratchpad, and for each plan it has run, the
// primitive arguments bound to them.
struct ExecutionContext::Impl {
 public:
  Impl(const dnnl::engine& engine, int threads)
      : engine_(engine), stream_(engine), threads_(threads) {}
  int threads() const { return threads_; }

  using Buffer = std::unique_ptr<uint8_t[], decltype(&std::free)>;
  // A lane runs one plan at a time, so every plan it runs shares its
  // buffers, grown to the largest plan yet: a context holds the memory of
  // its largest batch, not the sum over every batch size it has served.
  struct Lane {
    Buffer arena{nullptr, &std::free};
    Buffer scratchpad{nullptr, &std::free};
    size_t arena_bytes = 0;
    size_t scratchpad_bytes = 0;
    int64_t generation = 0;  // bumped whenever a buffer moves
  };
  struct Bound {
    int64_t generation = -1;  // of the lane's buffers that `args` point into
    std::vector<std::unordered_map<int, dnnl::memory>> args;  // one per step
  };

  static Buffer Allocate(size_t bytes) {
    constexpr size_t kAlign = 64;
    const size_t rounded = std::max<size_t>((bytes + kAlign - 1) / kAlign * kAlign, kAlign);
    return {static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded)), &std::free};
  }

  // Reallocates *buffer if it holds fewer than `bytes`; whether it moved.
  static bool Grow(size_t bytes, Buffer* buffer, size_t* held) {
    if (*buffer != nullptr && bytes <= *held) return false;
    buffer->reset();  // freed first: the old and new never coexist
    *buffer = Allocate(bytes);
    *held = bytes;
    return true;
  }

  size_t memory_bytes() const {
    size_t bytes = 0;
    for (const Lane& l : lanes_) bytes += l.arena_bytes + l.scratchpad_bytes;
    return bytes;
  }

  uint8_t* slot(const Plan& plan, int lane, int index) {
    return lanes_[lane].arena.get() + plan.slot_offset(index);
  }

  // Makes `lane`'s buffers big enough for `plan` and binds its arguments to
  // them. Allocates: call it for every lane before running lanes at once.
  Bound& BindTo(const Plan& plan, int lane = 0) {
    if (static_cast<int>(lanes_.size()) <= lane) lanes_.resize(lane + 1);
    Lane& l = lanes_[lane];
    if (Grow(plan.arena_bytes(), &l.arena, &l.arena_bytes)) ++l.generation;
    if (Grow(plan.max_scratchpad_bytes(), &l.scratchpad, &l.scratchpad_bytes)) ++l.generation;
    // Lanes running at once only find their (already bound) entries.
    auto it = bound_.find({&plan, lane});
    if (it != bound_.end() && it->second.generation == l.generation) return it->second;
    Bound& b = it != bound_.end() ? it->second : bound_[{&plan, lane}];
    b.args.clear();
    for (const PlanStep& step : plan.steps()) {
      std::unordered_map<int, dnnl::memory> args;
      for (const auto& [arg, ref] : step.args) {
        if (arg == DNNL_ARG_SCRATCHPAD) {
          args[arg] = dnnl::memory(step.scratchpad, engine_, l.scratchpad.get());
        } else if (ref.constant) {
          args[arg] = plan.constants()[ref.index];
        } else {
          args[arg] = dnnl::memory(ref.md, engine_, slot(plan, lane, ref.index));
        }
      }
      b.args.push_back(std::move(args));
    }
    b.generation = l.generation;
    return b;
  }

  // Runs `plan` on its batch of items starting at `input`, writing each
  // output's rows into `outputs` from item `first` on. Throws dnnl::error.
  void RunPlan(const Plan& plan, int lane, const float* input, int64_t per_item, int64_t first,
               std::vector<Tensor>& outputs) {
    Bound& bound = BindTo(plan, lane);
    // Copied rather than aliased, so the caller's buffer may be released or
    // reused as soon as Run returns, and any step may read the input slot.
    std::memcpy(slot(plan, lane, plan.input_slot()), input, plan.batch() * per_item * sizeof(float));
    for (size_t i = 0; i < plan.steps().size(); ++i) {
      const PlanStep& step = plan.steps()[i];
      if (step.fill.has_value()) {
        stream(lane).wait();
        const dnnl::memory& dst = bound.args[i].at(DNNL_ARG_DST);
        float* data = static_cast<float*>(dst.get_data_handle());
        std::fill(data, data + dst.get_desc().get_size() / sizeof(float), *step.fill);
        continue;
      }
      step.primitive.execute(stream(lane), bound.args[i]);
    }
    stream(lane).wait();
    for (size_t o = 0; o < plan.outputs().size(); ++o) {
      const PlanOutput& out = plan.outputs()[o];
      const int64_t n = NumElements(out.shape);
      std::memcpy(outputs[o].data.data() + first * (n / plan.batch()), slot(plan, lane, out.slot),
                  n * sizeof(float));
    }
  }

  dnnl::stream& stream(int lane = 0) {
    while (static_cast<int>(lane_streams_.size()) < lane) lane_streams_.emplace_back(engine_);
    return lane == 0 ? stream_ : lane_streams_[lane - 1];
  }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<dnnl::stream> lane_streams_;
  std::vector<Lane> lanes_;
  std::map<std::pair<const Plan*, int>, Bound> bound_;
  int threads_ = 0;
};

std::string OneDnnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return absl::StrCat(v->major, ".", v->minor, ".", v->patch);
}

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;
size_t ExecutionContext::memory_bytes() const { return impl_->memory_bytes(); }
int ExecutionContext::threads() const {
  return impl_->threads() > 0 ? impl_->threads() : omp_get_num_procs();
}

Model::Model(Graph graph, std::unique_ptr<EngineHandle> engine)
    : graph_(std::move(graph)), engine_(std::move(engine)), weights_(std::make_unique<WeightCache>()) {}

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path) {
  ASSIGN_OR_RETURN(Graph graph, absl::StartsWith(path, "zoo:") ? BuildZooModel(path)
                                                              : ImportOnnxFile(path));
  return FromGraph(std::move(graph));
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromGraph(Graph graph) {
  RETURN_IF_ERROR(OptimizeGraph(graph));
  std::unique_ptr<EngineHandle> engine;
  try {
    engine = std::make_unique<EngineHandle>();
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("cannot create the oneDNN CPU engine: ", e.what()));
  }
  auto model = std::unique_ptr<Model>(new Model(std::move(graph), std::move(engine)));
  // Compile the nominal batch now: the lowering is checked at load, the
  // first request does not pay for it, and every weight is in the cache.
  RETURN_IF_ERROR(model->Prepare(model->graph_.nominal_batch));
  model->ReleasePlainWeights();
  malloc_trim(0);  // hand the import's freed buffers back to the system
  return model;
}

void Model::ReleasePlainWeights() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, tensor] : graph_.initializers) {
    if (weights_->Holds(tensor)) std::vector<float>().swap(tensor.data);
  }
}

std::unique_ptr<ExecutionContext> Model::CreateContext(int threads) const {
  return std::unique_ptr<ExecutionContext>(
      new ExecutionContext(std::make_unique<ExecutionContext::Impl>(engine_->engine, threads)));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Model::Kernels(
    int64_t batch, int threads) const {
  ASSIGN_OR_RETURN(const Plan* plan, PlanFor(batch, threads));
  return plan->Kernels();
}

size_t Model::WeightBytes() const {
  absl::MutexLock lock(&mu_);
  return weights_->bytes();
}

absl::Status Model::Prepare(int64_t batch, int threads) const {
  if (threads <= 0) threads = omp_get_num_procs();
  if (!SplitsAcrossThreads(batch, threads)) return PlanFor(batch, threads).status();
  // As Run cuts it: batch / threads items per lane.
  return PlanFor(batch / threads, 1).status();
}

absl::StatusOr<std::pair<size_t, size_t>> Model::ActivationBytes(int64_t batch) const {
  ASSIGN_OR_RETURN(const Plan* plan, PlanFor(batch, 0));
  return std::make_pair(plan->arena_bytes(), plan->unplanned_activation_bytes());
}

absl::StatusOr<const Plan*> Model::PlanFor(int64_t batch, int threads) const {
  if (threads <= 0) threads = omp_get_num_procs();
  absl::MutexLock lock(&mu_);
  auto it = plans_.find({batch, threads});
  if (it != plans_.end()) return it->second.get();
  // Compiled on a thread of its own: the weight reorders it runs start
  // OpenMP threads that must not outlive it (engine/fresh_thread.h).
  WeightCache* weights = weights_.get();
  ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, RunOnFreshThread([&] {
                     // Primitives created now split their work for this many threads.
                     omp_set_num_threads(threads);
                     return Plan::Compile(graph_, batch, engine_->engine, weights);
                   }));
  const Plan* raw = plan.get();
  plans_[{batch, threads}] = std::move(plan);
  return raw;
}

bool Model::SplitsAcrossThreads(int64_t batch, int threads) const {
  // Only an even split pays: the lanes wait for the fullest one, and one
  // item more on a lane (9 items as 5 + 4 on 2 threads) costs more than
  // the split gains (ResNet-50 and AlexNet at 9, 11 and 17 items on 2
  // threads: 3-15% fewer images/s than one batch on both threads). Below 4
  // items per thread, AlexNet's weight-bound fully connected layers lose
  // by splitting (batch 2: 25%). docs/PERFORMANCE.md has the figures.
  if (threads < 2 || batch < 4 * threads || batch % threads != 0) return false;
  // Items are independent when every output keeps the batch as dimension 0.
  if (graph_.nominal_batch != 1) return false;
  auto shapes = InferShapes(graph_, batch);
  if (!shapes.ok()) return false;
  for (const ValueInfo& out : graph_.outputs) {
    if ((*shapes)[out.name].empty() || (*shapes)[out.name][0] != batch) return false;
  }
  return true;
}

absl::Status Model::Run(ExecutionContext& context, int64_t batch, absl::Span<const float> input,
                        std::vector<Tensor>* outputs) const {
  if (batch <= 0) return absl::InvalidArgumentError("batch size must be positive");
  const int64_t per_item = ItemElements(graph_.inputs[0].shape);
  if (static_cast<int64_t>(input.size()) != batch * per_item) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input holds ", input.size(), " floats; a batch of ", batch, " of shape ",
        ShapeToString(graph_.inputs[0].shape), " needs ", batch * per_item));
  }
  ExecutionContext::Impl& impl = *context.impl_;
  const int threads = context.threads();
  // A large batch runs as one sub-batch per thread, each on one thread:
  // oneDNN keeps a core busier with a whole convolution than with its
  // share of one (ResNet-50 batch 32 on 2 cores: ~8% more images/s).
  const bool split = SplitsAcrossThreads(batch, threads);
  const int lanes = split ? threads : 1;
  std::vector<const Plan*> plans(lanes);
  std::vector<int64_t> first(lanes + 1, 0);
  for (int l = 0; l < lanes; ++l) {
    const int64_t count = batch / lanes;  // SplitsAcrossThreads: lanes divide the batch
    first[l + 1] = first[l] + count;
    ASSIGN_OR_RETURN(plans[l], PlanFor(count, split ? 1 : threads));
  }
  outputs->clear();
  for (const PlanOutput& out : plans[0]->outputs()) {
    Shape shape = out.shape;
    if (split) shape[0] = batch;  // checked: dimension 0 is the batch
    outputs->push_back(Tensor{shape, std::vector<float>(NumElements(shape))});
  }
  // OpenMP's thread count is per calling thread: set it for this worker.
  omp_set_num_threads(threads);
  std::vector<std::string> errors(lanes);
  for (int l = 0; l < lanes; ++l) {  // allocate before the parallel region
    impl.BindTo(*plans[l], l);
    impl.stream(l);
  }
  if (!split) {
    try {
      impl.RunPlan(*plans[0], 0, input.data(), per_item, 0, *outputs);
    } catch (const dnnl::error& e) {
      errors[0] = e.what();
    }
  } else {
#pragma omp parallel for num_threads(lanes) schedule(static, 1)
    for (int l = 0; l < lanes; ++l) {
      try {  // no exception may leave an OpenMP region
        impl.RunPlan(*plans[l], l, input.data() + first[l] * per_item, per_item, first[l],
                     *outputs);
      } catch (const dnnl::error& e) {
        errors[l] = e.what();
      }
    }
  }
  for (const std::string& e : errors) {
    if (!e.empty()) return absl::InternalError(absl::StrCat("oneDNN failed while running: ", e));
  }
  return absl::OkStatus();
}

}  // namespace cnnserve::engine
