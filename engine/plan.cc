#include "engine/plan.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace cnnserve::engine {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

namespace {

memory::dims Dims(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

memory::desc PlainDesc(const Shape& shape) {
  static const Tag kTags[] = {Tag::a, Tag::a, Tag::ab, Tag::abc, Tag::abcd, Tag::abcde, Tag::abcdef};
  return memory::desc(Dims(shape), Dt::f32, kTags[std::min<size_t>(shape.size(), 6)]);
}

// Row-major strides of `shape`, in elements.
memory::dims PlainStrides(const Shape& shape) {
  memory::dims strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

// `shape` with leading 1s up to `rank` (numpy broadcasting alignment).
Shape AlignRank(Shape shape, size_t rank) {
  shape.insert(shape.begin(), rank - std::min(rank, shape.size()), 1);
  return shape;
}

struct EltwiseSpec {
  dnnl::algorithm algorithm;
  float alpha;
  float beta;
};

EltwiseSpec ToEltwise(const Activation& a) {
  switch (a.kind) {
    case Activation::Kind::kLeakyRelu: return {dnnl::algorithm::eltwise_relu, a.alpha, 0.0f};
    case Activation::Kind::kClip: return {dnnl::algorithm::eltwise_clip, a.alpha, a.beta};
    case Activation::Kind::kSigmoid: return {dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f};
    case Activation::Kind::kRelu: break;
  }
  return {dnnl::algorithm::eltwise_relu, 0.0f, 0.0f};
}

dnnl::primitive_attr Attr(const std::vector<PostOp>& post_ops = {}) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (!post_ops.empty()) {
    dnnl::post_ops ops;
    for (const PostOp& op : post_ops) {
      if (op.is_sum) {
        ops.append_sum(1.0f);
      } else {
        const EltwiseSpec e = ToEltwise(op.activation);
        ops.append_eltwise(1.0f, e.algorithm, e.alpha, e.beta);
      }
    }
    attr.set_post_ops(ops);
  }
  return attr;
}

// Whether convolutions keep activations in 16-channel blocks (nChw16c)
// rather than the layout oneDNN picks (format_tag::any). On AVX-512,
// oneDNN 2.6 picks NHWC for its brgemm kernels; its direct kernels on
// nChw16c are faster from two images on (ResNet-50 up to 10%, ResNet-18 up
// to 12%, AlexNet the same or better; VGG-16 the same except about 4% slower
// at batch 8 on one thread) and within 2% for one image; docs/PERFORMANCE.md
// has the figures. Elsewhere (AVX2: 8-channel blocks)
// it was not measured, so oneDNN chooses.
bool BlockedActivations() {
  static const bool avx512 = [] {
    const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
    return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  }();
  return avx512;
}

}  // namespace

// Winograd (oneDNN picks F(2x2,3x3) or F(4x4,3x3) per shape and batch)
// needs 2.25x to 4x fewer multiplies than a direct 3x3, stride-1 kernel; on
// the layers chosen here it measures 1.5x faster for one image and about 2x
// for more. Its results differ from the direct kernel's by ~1e-6 relative,
// as any reordering of fp32 sums does. Its cost is memory: weights
// transformed to 6x6 tiles (4x the bytes) and a scratchpad. So the layers
// with the largest outputs, whose channels and weights are fewest and whose
// gain per byte is largest, go first, one output size at a time, within a
// quarter of the model's weights. That takes ResNet-18/50 and VGG-16 down
// to their 28x28 layers (ResNet-50's 14x14 ones would add 80 MB for ~10%
// more at batch 32) and AlexNet's 13x13 ones, small beside its fully
// connected weights. docs/PERFORMANCE.md has the figures.
std::set<std::string> WinogradConvs(const Graph& graph, const std::map<std::string, Shape>& shapes) {
  struct Candidate {
    int64_t positions, weight_bytes;
    const std::string* name;
  };
  std::vector<Candidate> candidates;
  int64_t model_bytes = 0;
  for (const auto& [name, tensor] : graph.initializers) model_bytes += NumElements(tensor.shape) * 4;
  for (const Node& node : graph.nodes) {
    const auto* p = std::get_if<ConvParams>(&node.params);
    if (p == nullptr || p->group != 1 || p->kernel != std::vector<int64_t>{3, 3} ||
        p->strides != std::vector<int64_t>{1, 1} || p->dilations != std::vector<int64_t>{1, 1}) {
      continue;
    }
    const Tensor* w = graph.FindInitializer(node.inputs[1]);
    if (w == nullptr || w->shape[0] % 16 != 0 || w->shape[1] % 16 != 0) continue;  // not blocked
    const Shape& out = shapes.at(node.outputs[0]);
    candidates.push_back({out[2] * out[3], NumElements(w->shape) * 4, &node.name});
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.positions > b.positions; });
  constexpr int64_t kTransformGrowth = 4;  // 6x6 tiles for 3x3 weights
  constexpr int64_t kBudgetShare = 4;      // a quarter of the model's weights
  // An output size is taken whole or not at all: the layers of one stage
  // run alike, and the next size's scratchpad is larger too.
  std::set<std::string> chosen;
  int64_t transformed = 0;
  for (size_t first = 0; first < candidates.size();) {
    size_t end = first;
    int64_t stage = 0;
    for (; end < candidates.size() && candidates[end].positions == candidates[first].positions; ++end) {
      stage += kTransformGrowth * candidates[end].weight_bytes;
    }
    if (kBudgetShare * (transformed + stage) > model_bytes) break;
    transformed += stage;
    for (; first < end; ++first) chosen.insert(*candidates[first].name);
  }
  return chosen;
}

std::vector<size_t> PlanArena(const std::vector<size_t>& sizes,
                              const std::vector<std::pair<int, int>>& lifetimes, size_t* arena) {
  constexpr size_t kAlign = 64;
  std::vector<size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
  std::vector<size_t> offsets(sizes.size(), 0);
  std::vector<size_t> placed;
  *arena = 0;
  for (size_t s : order) {
    // Blocks already placed whose lifetimes overlap this one, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t p : placed) {
      if (lifetimes[p].first <= lifetimes[s].second && lifetimes[s].first <= lifetimes[p].second) {
        busy.push_back({offsets[p], offsets[p] + sizes[p]});
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + sizes[s] <= begin) break;
      offset = std::max(offset, (end + kAlign - 1) / kAlign * kAlign);
    }
    offsets[s] = offset;
    *arena = std::max(*arena, offset + sizes[s]);
    placed.push_back(s);
  }
  return offsets;
}

// Builds one Plan; keeps the state of compilation out of Plan itself.
class PlanBuilder {
 public:
  PlanBuilder(const Graph& graph, int64_t batch, const dnnl::engine& engine, WeightCache* weights)
      : graph_(graph), engine_(engine), stream_(engine), weights_(weights),
        plan_(std::make_unique<Plan>()) {
    plan_->batch_ = batch;
  }

  absl::StatusOr<std::unique_ptr<Plan>> Build() {
    ASSIGN_OR_RETURN(shapes_, InferShapes(graph_, plan_->batch_));
    winograd_ = WinogradConvs(graph_, shapes_);
    for (const Node& node : graph_.nodes) {
      for (const std::string& in : node.inputs) ++uses_[in];
    }
    for (const ValueInfo& out : graph_.outputs) ++uses_[out.name];
    const ValueInfo& input = graph_.inputs.at(0);
    const memory::desc input_md = PlainDesc(shapes_[input.name]);
    values_[input.name] = {NewSlot(input_md), input_md};
    pinned_.insert(0);
    for (const Node& node : graph_.nodes) {
      try {
        RETURN_IF_ERROR(AddNode(node));
      } catch (const dnnl::error& e) {
        return absl::InternalError(absl::StrCat("oneDNN could not build node '", node.name,
                                                "' (", OpName(node.params), "): ", e.what()));
      }
      for (const std::string& in : node.inputs) --uses_[in];
    }
    for (const ValueInfo& out : graph_.outputs) {
      const Shape& shape = shapes_[out.name];
      Value plain = Ensure(values_.at(out.name), PlainDesc(shape), out.name);
      plan_->outputs_.push_back({plain.slot, shape});
    }
    stream_.wait();
    PlanMemory();
    return std::move(plan_);
  }

 private:
  struct Value {
    int slot;
    memory::desc md;
  };

  static SlotRef Act(const Value& v) { return {false, v.slot, v.md}; }

  int NewSlot(const memory::desc& md) {
    plan_->slots_.push_back(md);
    return static_cast<int>(plan_->slots_.size()) - 1;
  }

  Value NewValue(const memory::desc& md) { return {NewSlot(md), md}; }

  void AddStep(dnnl::primitive prim, const memory::desc& scratchpad,
               std::vector<std::pair<int, SlotRef>> args, const std::string& label) {
    if (scratchpad.get_size() > 0) {
      args.push_back({DNNL_ARG_SCRATCHPAD, {}});  // bound per context
      plan_->max_scratchpad_bytes_ = std::max(plan_->max_scratchpad_bytes_, scratchpad.get_size());
    }
    plan_->steps_.push_back({std::move(prim), std::move(args), scratchpad, label, std::nullopt});
  }

  // Returns `v` in layout `md`, adding a reorder step when it is in another.
  Value Ensure(const Value& v, const memory::desc& md, const std::string& label) {
    if (v.md == md) return v;
    return Copy(v, md, label);
  }

  Value Copy(const Value& v, const memory::desc& md, const std::string& label) {
    dnnl::reorder::primitive_desc pd(engine_, v.md, engine_, md, Attr());
    Value out = NewValue(md);
    AddStep(dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, Act(v)}, {DNNL_ARG_TO, Act(out)}},
            label + "/reorder");
    return out;
  }

  // A constant in layout `md`, from the model's weight cache.
  SlotRef AddConstant(const Tensor& t, const memory::desc& user_md, const memory::desc& md) {
    plan_->constants_.push_back(weights_->Get(t, user_md, md, engine_, stream_));
    return {true, static_cast<int>(plan_->constants_.size()) - 1, md};
  }

  const Tensor& Init(const Node& node, size_t i) const { return *graph_.FindInitializer(node.inputs[i]); }

  // An operand of an elementwise op as a SlotRef: activation or plain constant.
  SlotRef Operand(const std::string& name, size_t rank, const std::string& label) {
    if (const Tensor* t = graph_.FindInitializer(name)) {
      const memory::desc md = PlainDesc(AlignRank(t->shape, rank));
      return AddConstant(*t, md, md);
    }
    const Value v = values_.at(name);
    const Shape& shape = shapes_.at(name);
    const Value plain = Ensure(v, PlainDesc(shape), label);
    return {false, plain.slot, PlainDesc(AlignRank(shape, rank))};
  }

  absl::Status AddNode(const Node& node) {
    const Shape& out_shape = shapes_.at(node.outputs[0]);
    const std::string& label = node.name;
    Value out;
    if (const auto* p = std::get_if<ConvParams>(&node.params)) {
      out = AddConv(node, *p, out_shape);
    } else if (const auto* p = std::get_if<PoolParams>(&node.params)) {
      out = AddPool(node, *p, out_shape);
    } else if (const auto* p = std::get_if<GemmParams>(&node.params)) {
      out = AddGemm(node, *p, out_shape);
    } else if (std::holds_alternative<MatMulParams>(node.params)) {
      const size_t rank = out_shape.size();
      SlotRef a = Operand(node.inputs[0], rank, label);
      SlotRef b = Operand(node.inputs[1], rank, label);
      out = NewValue(PlainDesc(out_shape));
      dnnl::matmul::desc d(a.md, b.md, out.md);
      dnnl::matmul::primitive_desc pd(d, Attr(), engine_);
      AddStep(dnnl::matmul(pd), pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, Act(out)}}, label);
    } else if (std::holds_alternative<FlattenParams>(node.params) ||
               std::holds_alternative<ReshapeParams>(node.params)) {
      // A view of the row-major layout: no copy once the input is plain.
      Value plain = Ensure(values_.at(node.inputs[0]), PlainDesc(shapes_.at(node.inputs[0])), label);
      out = {plain.slot, PlainDesc(out_shape)};
      aliased_.insert(plain.slot);
    } else if (const auto* p = std::get_if<TransposeParams>(&node.params)) {
      const Shape& in_shape = shapes_.at(node.inputs[0]);
      Value plain = Ensure(values_.at(node.inputs[0]), PlainDesc(in_shape), label);
      const memory::dims in_strides = PlainStrides(in_shape);
      memory::dims strides;
      for (int64_t axis : p->perm) strides.push_back(in_strides[axis]);
      out = Copy({plain.slot, memory::desc(Dims(out_shape), Dt::f32, strides)}, PlainDesc(out_shape),
                 label);
    } else if (const auto* p = std::get_if<EltwiseParams>(&node.params)) {
      const Value in = values_.at(node.inputs[0]);
      const EltwiseSpec e = ToEltwise(p->activation);
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, e.algorithm, in.md, e.alpha,
                                    e.beta);
      dnnl::eltwise_forward::primitive_desc pd(d, Attr(), engine_);
      out = NewValue(pd.dst_desc());
      AddStep(dnnl::eltwise_forward(pd), pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, Act(in)}, {DNNL_ARG_DST, Act(out)}}, label);
    } else if (std::holds_alternative<AddParams>(node.params)) {
      out = AddAdd(node, out_shape);
    } else if (const auto* p = std::get_if<ConcatParams>(&node.params)) {
      std::vector<memory::desc> srcs;
      std::vector<std::pair<int, SlotRef>> args;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const Value v = values_.at(node.inputs[i]);
        srcs.push_back(v.md);
        args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), Act(v)});
      }
      const int axis = static_cast<int>(p->axis < 0 ? p->axis + out_shape.size() : p->axis);
      dnnl::concat::primitive_desc pd(axis, srcs, engine_, Attr());
      out = NewValue(pd.dst_desc());
      args.push_back({DNNL_ARG_DST, Act(out)});
      AddStep(dnnl::concat(pd), pd.scratchpad_desc(), std::move(args), label);
    } else if (const auto* p = std::get_if<LrnParams>(&node.params)) {
      const Value in = values_.at(node.inputs[0]);
      dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_inference,
                                dnnl::algorithm::lrn_across_channels, in.md, p->size, p->alpha,
                                p->beta, p->bias);
      dnnl::lrn_forward::primitive_desc pd(d, Attr(), engine_);
      out = NewValue(pd.dst_desc());
      AddStep(dnnl::lrn_forward(pd), pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, Act(in)}, {DNNL_ARG_DST, Act(out)}}, label);
    } else if (const auto* p = std::get_if<PadParams>(&node.params)) {
      out = AddPad(node, *p, out_shape);
    } else if (const auto* p = std::get_if<SoftmaxParams>(&node.params)) {
      const Shape& in_shape = shapes_.at(node.inputs[0]);
      Value plain = Ensure(values_.at(node.inputs[0]), PlainDesc(in_shape), label);
      int axis = static_cast<int>(p->axis < 0 ? p->axis + in_shape.size() : p->axis);
      memory::desc md = plain.md;
      if (p->coerce_2d) {
        const int64_t outer = NumElements(Shape(in_shape.begin(), in_shape.begin() + axis));
        md = PlainDesc({outer, NumElements(in_shape) / std::max<int64_t>(outer, 1)});
        axis = 1;
      }
      dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md, axis);
      dnnl::softmax_forward::primitive_desc pd(d, Attr(), engine_);
      out = NewValue(PlainDesc(out_shape));
      AddStep(dnnl::softmax_forward(pd), pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, {false, plain.slot, md}}, {DNNL_ARG_DST, {false, out.slot, md}}}, label);
    } else {
      return absl::UnimplementedError(absl::StrCat("node '", node.name, "': no oneDNN lowering for ",
                                                   OpName(node.params)));
    }
    values_[node.outputs[0]] = out;
    return absl::OkStatus();
  }

  // A Pad that was not folded: fill the (plain) output with the value, then
  // copy the input into the window of it that the pads leave.
  Value AddPad(const Node& node, const PadParams& p, const Shape& out_shape) {
    const Shape& in_shape = shapes_.at(node.inputs[0]);
    const Value in = Ensure(values_.at(node.inputs[0]), PlainDesc(in_shape), node.name);
    const Value out = NewValue(PlainDesc(out_shape));
    plan_->steps_.push_back({dnnl::primitive(), {{DNNL_ARG_DST, Act(out)}}, {}, node.name + "/fill",
                             p.value});
    const memory::desc window =
        out.md.submemory_desc(Dims(in_shape), {0, 0, p.pads_begin[0], p.pads_begin[1]});
    dnnl::reorder::primitive_desc pd(engine_, in.md, engine_, window, Attr());
    AddStep(dnnl::reorder(pd), pd.scratchpad_desc(),
            {{DNNL_ARG_FROM, Act(in)}, {DNNL_ARG_TO, {false, out.slot, window}}}, node.name);
    return out;
  }

  Value AddConv(const Node& node, const ConvParams& p, const Shape& out_shape) {
    const Value in = values_.at(node.inputs[0]);
    const Tensor& w = Init(node, 1);
    memory::dims w_dims = Dims(w.shape);
    Tag w_tag = Tag::oihw;
    if (p.group > 1) {
      w_dims = {p.group, w.shape[0] / p.group, w.shape[1], w.shape[2], w.shape[3]};
      w_tag = Tag::goihw;
    }
    const bool blocked = BlockedActivations() && p.group == 1 && w.shape[0] % 16 == 0;
    const Tag src_tag = blocked && w.shape[1] % 16 == 0 ? Tag::nChw16c : Tag::any;
    const Tag dst_tag = blocked ? Tag::nChw16c : Tag::any;
    const memory::desc b_md({w.shape[0]}, Dt::f32, Tag::a);
    auto make_pd = [&](Tag src, Tag dst, dnnl::algorithm alg) {
      const memory::desc src_md(in.md.dims(), Dt::f32, src);
      const memory::desc w_any(w_dims, Dt::f32, Tag::any);
      const memory::desc dst_md(Dims(out_shape), Dt::f32, dst);
      const memory::dims dilations = {p.dilations[0] - 1, p.dilations[1] - 1};
      const auto prop = dnnl::prop_kind::forward_inference;
      auto d = p.has_bias
                   ? dnnl::convolution_forward::desc(prop, alg, src_md, w_any, b_md, dst_md,
                                                     Dims(p.strides), dilations, Dims(p.pads_begin),
                                                     Dims(p.pads_end))
                   : dnnl::convolution_forward::desc(prop, alg, src_md, w_any, dst_md,
                                                     Dims(p.strides), dilations, Dims(p.pads_begin),
                                                     Dims(p.pads_end));
      return dnnl::convolution_forward::primitive_desc(d, Attr(p.post_ops), engine_);
    };
    const auto direct = dnnl::algorithm::convolution_direct;
    auto pd = make_pd(src_tag, dst_tag, direct);
    // A shape the blocked kernels do not take gets oneDNN's own choice
    // rather than its reference code.
    if (blocked && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) {
      pd = make_pd(Tag::any, Tag::any, direct);
    }
    if (blocked && winograd_.count(node.name) > 0) {
      try {
        pd = make_pd(src_tag, dst_tag, dnnl::algorithm::convolution_winograd);
      } catch (const dnnl::error&) {
        // No Winograd kernel for this shape or ISA (channels not in 16s,
        // no AVX-512): keep the direct one.
      }
    }

    const Value src = Ensure(in, pd.src_desc(), node.name);
    std::vector<std::pair<int, SlotRef>> args = {
        {DNNL_ARG_SRC, Act(src)},
        {DNNL_ARG_WEIGHTS, AddConstant(w, memory::desc(w_dims, Dt::f32, w_tag), pd.weights_desc())}};
    if (p.has_bias) args.push_back({DNNL_ARG_BIAS, AddConstant(Init(node, 2), b_md, b_md)});
    Value out;
    const bool has_sum = std::any_of(p.post_ops.begin(), p.post_ops.end(),
                                     [](const PostOp& op) { return op.is_sum; });
    if (has_sum) {
      // The sum post-op adds into dst: dst starts as the residual. Reuse the
      // residual's memory when nothing else reads it, else copy it.
      const std::string& name = node.inputs.back();
      const Value residual = values_.at(name);
      const bool reusable = residual.md == pd.dst_desc() && uses_[name] == 1 &&
                            aliased_.count(residual.slot) == 0 && pinned_.count(residual.slot) == 0;
      out = reusable ? residual : Copy(residual, pd.dst_desc(), node.name + "/residual");
    } else {
      out = NewValue(pd.dst_desc());
    }
    args.push_back({DNNL_ARG_DST, Act(out)});
    AddStep(dnnl::convolution_forward(pd), pd.scratchpad_desc(), std::move(args), node.name);
    return out;
  }

  Value AddPool(const Node& node, const PoolParams& p, const Shape& out_shape) {
    const Value in = values_.at(node.inputs[0]);
    const Shape& in_shape = shapes_.at(node.inputs[0]);
    memory::dims kernel, strides, pads_begin, pads_end;
    if (p.global) {
      kernel = {in_shape[2], in_shape[3]};
      strides = {1, 1};
      pads_begin = pads_end = {0, 0};
    } else {
      kernel = Dims(p.kernel);
      strides = Dims(p.strides);
      pads_begin = Dims(p.pads_begin);
      // The right padding that yields out_shape (covers ceil_mode).
      pads_end.resize(2);
      for (int i = 0; i < 2; ++i) {
        pads_end[i] = (out_shape[2 + i] - 1) * p.strides[i] + p.kernel[i] - in_shape[2 + i] -
                      p.pads_begin[i];
      }
    }
    const dnnl::algorithm alg = p.kind == PoolParams::Kind::kMax ? dnnl::algorithm::pooling_max
                                : p.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                                      : dnnl::algorithm::pooling_avg_exclude_padding;
    memory::desc dst_any(Dims(out_shape), Dt::f32, Tag::any);
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, in.md, dst_any, strides,
                                  kernel, pads_begin, pads_end);
    dnnl::pooling_forward::primitive_desc pd(d, Attr(), engine_);
    Value out = NewValue(pd.dst_desc());
    AddStep(dnnl::pooling_forward(pd), pd.scratchpad_desc(),
            {{DNNL_ARG_SRC, Act(in)}, {DNNL_ARG_DST, Act(out)}}, node.name);
    return out;
  }

  Value AddGemm(const Node& node, const GemmParams& p, const Shape& out_shape) {
    const Value in = values_.at(node.inputs[0]);
    const Tensor& w = Init(node, 1);
    // At batch 1-2 a fully connected layer is a matrix-vector product bound
    // by memory bandwidth: oneDNN's plain-layout GEMM streams the weights
    // faster than the blocked brgemm it picks with `any` (AlexNet batch 1,
    // 2 threads: 14.8 ms against 17.7 ms); from batch 4 blocked wins.
    const bool gemv = out_shape[0] <= 2;
    memory::desc w_any(Dims(w.shape), Dt::f32, gemv ? Tag::ab : Tag::any);
    memory::desc b_md({w.shape[0]}, Dt::f32, Tag::a);
    memory::desc dst_any(Dims(out_shape), Dt::f32, Tag::any);
    const auto prop = dnnl::prop_kind::forward_inference;
    auto d = p.has_bias ? dnnl::inner_product_forward::desc(prop, in.md, w_any, b_md, dst_any)
                        : dnnl::inner_product_forward::desc(prop, in.md, w_any, dst_any);
    dnnl::inner_product_forward::primitive_desc pd(d, Attr(p.post_ops), engine_);
    const Value src = Ensure(in, pd.src_desc(), node.name);
    std::vector<std::pair<int, SlotRef>> args = {
        {DNNL_ARG_SRC, Act(src)},
        {DNNL_ARG_WEIGHTS, AddConstant(w, PlainDesc(w.shape), pd.weights_desc())}};
    if (p.has_bias) args.push_back({DNNL_ARG_BIAS, AddConstant(Init(node, 2), b_md, b_md)});
    Value out = NewValue(pd.dst_desc());
    args.push_back({DNNL_ARG_DST, Act(out)});
    AddStep(dnnl::inner_product_forward(pd), pd.scratchpad_desc(), std::move(args), node.name);
    return out;
  }

  Value AddAdd(const Node& node, const Shape& out_shape) {
    // src0 is an activation with the output's shape; src1 may broadcast.
    std::string a = node.inputs[0], b = node.inputs[1];
    if (graph_.IsInitializer(a) || shapes_.at(a) != out_shape) std::swap(a, b);
    const Value va = values_.at(a);
    SlotRef src1;
    if (!graph_.IsInitializer(b) && shapes_.at(b) == out_shape) {
      src1 = Act(Ensure(values_.at(b), va.md, node.name));
    } else {
      src1 = Operand(b, out_shape.size(), node.name);
    }
    dnnl::binary::desc d(dnnl::algorithm::binary_add, va.md, src1.md, va.md);
    dnnl::binary::primitive_desc pd(d, Attr(), engine_);
    Value out = NewValue(pd.dst_desc());
    AddStep(dnnl::binary(pd), pd.scratchpad_desc(),
            {{DNNL_ARG_SRC_0, Act(va)}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, Act(out)}}, node.name);
    return out;
  }

  // Lifetimes from the steps that touch each slot, then arena offsets.
  void PlanMemory() {
    const int n = static_cast<int>(plan_->slots_.size());
    std::vector<std::pair<int, int>> life(n, {std::numeric_limits<int>::max(), -1});
    for (int i = 0; i < static_cast<int>(plan_->steps_.size()); ++i) {
      for (const auto& [arg, ref] : plan_->steps_[i].args) {
        if (ref.constant || arg == DNNL_ARG_SCRATCHPAD) continue;
        life[ref.index].first = std::min(life[ref.index].first, i);
        life[ref.index].second = std::max(life[ref.index].second, i);
      }
    }
    life[0].first = -1;  // the input is copied in before the first step
    const int end = static_cast<int>(plan_->steps_.size());
    for (const PlanOutput& out : plan_->outputs_) life[out.slot].second = end;
    std::vector<size_t> sizes(n);
    for (int s = 0; s < n; ++s) {
      sizes[s] = plan_->slots_[s].get_size();
      plan_->unplanned_bytes_ += sizes[s];
      life[s].second = std::max(life[s].second, 0);
      life[s].first = std::min(life[s].first, life[s].second);
    }
    plan_->slot_offsets_ = PlanArena(sizes, life, &plan_->arena_bytes_);
  }

  const Graph& graph_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  WeightCache* weights_;
  std::unique_ptr<Plan> plan_;
  std::map<std::string, Shape> shapes_;
  std::map<std::string, Value> values_;
  std::map<std::string, int> uses_;  // remaining readers of each value
  std::set<int> aliased_;            // slots viewed under more than one value
  std::set<int> pinned_;             // slots that must not be written in place
  std::set<std::string> winograd_;   // convolutions to run as Winograd
};

dnnl::memory WeightCache::Get(const Tensor& source, const memory::desc& user_md,
                              const memory::desc& md, const dnnl::engine& engine,
                              dnnl::stream& stream) {
  auto& versions = entries_[&source];
  for (const auto& [desc, mem] : versions) {
    if (desc == md) return mem;
  }
  // From the graph's plain copy while it is there, else from a cached
  // blocked version of the same logical shape (its plain copy was released).
  memory from;
  if (!source.data.empty()) {
    from = memory(user_md, engine);
    std::memcpy(from.get_data_handle(), source.data.data(), source.data.size() * sizeof(float));
  } else {
    for (const auto& [desc, mem] : versions) {
      if (desc.dims() == md.dims() && desc.data.format_kind == dnnl_blocked) from = mem;
    }
    if (!from) {
      throw dnnl::error(dnnl_invalid_arguments, "weights were released before this layout was cached");
    }
  }
  memory target = from;
  if (from.get_desc() != md) {
    target = memory(md, engine);
    dnnl::reorder(from, target).execute(stream, from, target);
    stream.wait();
  }
  versions.push_back({md, target});
  bytes_ += md.get_size();
  return target;
}

bool WeightCache::Holds(const Tensor& source) const {
  auto it = entries_.find(&source);
  if (it == entries_.end()) return false;
  for (const auto& [desc, mem] : it->second) {
    if (desc.data.format_kind == dnnl_blocked) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> Plan::Kernels() const {
  std::vector<std::pair<std::string, std::string>> kernels;
  for (const PlanStep& step : steps_) {
    const char* impl = "fill";
    if (step.primitive) {
      dnnl_primitive_desc_query(step.primitive.get_primitive_desc(), dnnl_query_impl_info_str, 0,
                                &impl);
    }
    kernels.emplace_back(step.label, impl);
  }
  return kernels;
}

absl::StatusOr<std::unique_ptr<Plan>> Plan::Compile(const Graph& graph, int64_t batch,
                                                    const dnnl::engine& engine,
                                                    WeightCache* weights) {
  try {
    return PlanBuilder(graph, batch, engine, weights).Build();
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN failed to compile the plan: ", e.what()));
  }
}

}  // namespace cnnserve::engine
