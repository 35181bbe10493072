#include "engine/plan.h"

#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace cnnserve::engine {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

namespace {

memory::dims Dims(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

Tag PlainTag(size_t rank) {
  switch (rank) {
    case 1: return Tag::a;
    case 2: return Tag::ab;
    case 3: return Tag::abc;
    case 4: return Tag::abcd;
    default: return Tag::abcde;
  }
}

memory::desc PlainDesc(const Shape& shape) {
  return memory::desc(Dims(shape), Dt::f32, PlainTag(shape.size()));
}

dnnl::primitive_attr UserScratchpadAttr(Activation activation) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (activation == Activation::kRelu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

}  // namespace

// Builds one Plan; keeps the state of compilation out of Plan itself.
class PlanBuilder {
 public:
  PlanBuilder(const Graph& graph, int64_t batch, const dnnl::engine& engine)
      : graph_(graph), engine_(engine), stream_(engine) {
    plan_ = std::make_unique<Plan>();
    plan_->batch_ = batch;
  }

  absl::StatusOr<std::unique_ptr<Plan>> Build() {
    ASSIGN_OR_RETURN(shapes_, InferShapes(graph_, plan_->batch_));
    const ValueInfo& input = graph_.inputs.at(0);
    plan_->input_shape_ = shapes_[input.name];
    values_[input.name] = {NewActivation(PlainDesc(plan_->input_shape_)),
                           PlainDesc(plan_->input_shape_)};
    for (const Node& node : graph_.nodes) {
      try {
        RETURN_IF_ERROR(AddNode(node));
      } catch (const dnnl::error& e) {
        return absl::InternalError(absl::StrCat("oneDNN could not build node '", node.name,
                                                "' (", OpName(node.params), "): ", e.what()));
      }
    }
    for (const ValueInfo& out : graph_.outputs) {
      const Shape& shape = shapes_[out.name];
      Value plain = Ensure(values_.at(out.name), PlainDesc(shape), out.name);
      plan_->outputs_.push_back({plain.slot, shape});
    }
    stream_.wait();
    return std::move(plan_);
  }

 private:
  struct Value {
    int slot;
    memory::desc md;
  };

  static SlotRef Act(const Value& v) { return {false, v.slot, v.md}; }

  int NewActivation(const memory::desc& md) {
    plan_->activations_.push_back(md);
    return static_cast<int>(plan_->activations_.size()) - 1;
  }

  void AddStep(dnnl::primitive prim, const memory::desc& scratchpad,
               std::vector<std::pair<int, SlotRef>> args, const std::string& label) {
    if (scratchpad.get_size() > 0) {
      args.push_back({DNNL_ARG_SCRATCHPAD, {}});  // bound per context
      plan_->max_scratchpad_bytes_ = std::max(plan_->max_scratchpad_bytes_, scratchpad.get_size());
    }
    plan_->steps_.push_back({std::move(prim), std::move(args), scratchpad, label});
  }

  // Returns `v` in layout `md`, adding a reorder step when it is in another.
  Value Ensure(const Value& v, const memory::desc& md, const std::string& label) {
    if (v.md == md) return v;
    dnnl::primitive_attr attr = UserScratchpadAttr(Activation::kNone);
    dnnl::reorder::primitive_desc pd(engine_, v.md, engine_, md, attr);
    Value out{NewActivation(md), md};
    AddStep(dnnl::reorder(pd), pd.scratchpad_desc(),
            {{DNNL_ARG_FROM, Act(v)}, {DNNL_ARG_TO, Act(out)}},
            label + "/reorder");
    return out;
  }

  // Copies a weight tensor into plan-owned memory of layout `md`, reordering once.
  SlotRef AddConstant(const Tensor& t, const memory::desc& user_md, const memory::desc& md) {
    memory user(user_md, engine_);
    std::memcpy(user.get_data_handle(), t.data.data(), t.data.size() * sizeof(float));
    memory target = user;
    if (user_md != md) {
      target = memory(md, engine_);
      dnnl::reorder(user, target).execute(stream_, user, target);
    }
    plan_->constants_.push_back(target);
    return {true, static_cast<int>(plan_->constants_.size()) - 1, md};
  }

  const Tensor& Init(const Node& node, size_t i) const { return graph_.initializers.at(node.inputs[i]); }

  absl::Status AddNode(const Node& node) {
    const Value in = values_.at(node.inputs[0]);
    const Shape& in_shape = shapes_.at(node.inputs[0]);
    const Shape& out_shape = shapes_.at(node.outputs[0]);
    Value out;
    if (const auto* p = std::get_if<ConvParams>(&node.params)) {
      out = AddConv(node, *p, in, out_shape);
    } else if (const auto* p = std::get_if<PoolParams>(&node.params)) {
      out = AddPool(node, *p, in, in_shape, out_shape);
    } else if (std::holds_alternative<GemmParams>(node.params)) {
      out = AddGemm(node, std::get<GemmParams>(node.params), in, out_shape);
    } else if (std::holds_alternative<FlattenParams>(node.params)) {
      // A view of the plain layout: no copy once the input is row-major.
      Value plain = Ensure(in, PlainDesc(in_shape), node.name);
      out = {plain.slot, PlainDesc(out_shape)};
    } else if (std::holds_alternative<ReluParams>(node.params)) {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::eltwise_relu, in.md, 0.0f, 0.0f);
      dnnl::eltwise_forward::primitive_desc pd(d, UserScratchpadAttr(Activation::kNone), engine_);
      out = {NewActivation(pd.dst_desc()), pd.dst_desc()};
      AddStep(dnnl::eltwise_forward(pd), pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, Act(in)}, {DNNL_ARG_DST, Act(out)}}, node.name);
    } else {
      return absl::UnimplementedError("no oneDNN lowering for op " + OpName(node.params));
    }
    values_[node.outputs[0]] = out;
    return absl::OkStatus();
  }

  Value AddConv(const Node& node, const ConvParams& p, const Value& in, const Shape& out_shape) {
    const Tensor& w = Init(node, 1);
    const bool has_bias = node.inputs.size() > 2;
    memory::dims w_dims = Dims(w.shape);
    Tag w_tag = Tag::oihw;
    if (p.group > 1) {
      w_dims = {p.group, w.shape[0] / p.group, w.shape[1], w.shape[2], w.shape[3]};
      w_tag = Tag::goihw;
    }
    const memory::dims in_dims = in.md.dims();
    memory::desc src_any(in_dims, Dt::f32, Tag::any);
    memory::desc w_any(w_dims, Dt::f32, Tag::any);
    memory::desc b_md({w.shape[0]}, Dt::f32, Tag::a);
    memory::desc dst_any(Dims(out_shape), Dt::f32, Tag::any);
    const memory::dims dilations = {p.dilations[0] - 1, p.dilations[1] - 1};
    auto d = has_bias
                 ? dnnl::convolution_forward::desc(
                       dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                       src_any, w_any, b_md, dst_any, Dims(p.strides), dilations,
                       Dims(p.pads_begin), Dims(p.pads_end))
                 : dnnl::convolution_forward::desc(
                       dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                       src_any, w_any, dst_any, Dims(p.strides), dilations,
                       Dims(p.pads_begin), Dims(p.pads_end));
    dnnl::convolution_forward::primitive_desc pd(d, UserScratchpadAttr(p.activation), engine_);

    Value src = Ensure(in, pd.src_desc(), node.name);
    std::vector<std::pair<int, SlotRef>> args = {
        {DNNL_ARG_SRC, Act(src)},
        {DNNL_ARG_WEIGHTS, AddConstant(w, memory::desc(w_dims, Dt::f32, w_tag), pd.weights_desc())}};
    if (has_bias) args.push_back({DNNL_ARG_BIAS, AddConstant(Init(node, 2), b_md, b_md)});
    Value out{NewActivation(pd.dst_desc()), pd.dst_desc()};
    args.push_back({DNNL_ARG_DST, Act(out)});
    AddStep(dnnl::convolution_forward(pd), pd.scratchpad_desc(), std::move(args), node.name);
    return out;
  }

  Value AddPool(const Node& node, const PoolParams& p, const Value& in, const Shape& in_shape,
                const Shape& out_shape) {
    // oneDNN wants the right padding that yields out_shape (covers ceil_mode).
    memory::dims pads_end(2);
    for (int i = 0; i < 2; ++i) {
      pads_end[i] = (out_shape[2 + i] - 1) * p.strides[i] + p.kernel[i] - in_shape[2 + i] -
                    p.pads_begin[i];
    }
    memory::desc dst_any(Dims(out_shape), Dt::f32, Tag::any);
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference,
                                  dnnl::algorithm::pooling_max, in.md, dst_any, Dims(p.strides),
                                  Dims(p.kernel), Dims(p.pads_begin), pads_end);
    dnnl::pooling_forward::primitive_desc pd(d, UserScratchpadAttr(Activation::kNone), engine_);
    Value out{NewActivation(pd.dst_desc()), pd.dst_desc()};
    AddStep(dnnl::pooling_forward(pd), pd.scratchpad_desc(),
            {{DNNL_ARG_SRC, Act(in)}, {DNNL_ARG_DST, Act(out)}}, node.name);
    return out;
  }

  Value AddGemm(const Node& node, const GemmParams& p, const Value& in, const Shape& out_shape) {
    const Tensor& w = Init(node, 1);
    const bool has_bias = node.inputs.size() > 2;
    memory::desc w_any(Dims(w.shape), Dt::f32, Tag::any);
    memory::desc b_md({w.shape[0]}, Dt::f32, Tag::a);
    memory::desc dst_any(Dims(out_shape), Dt::f32, Tag::any);
    auto d = has_bias ? dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference,
                                                          in.md, w_any, b_md, dst_any)
                      : dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference,
                                                          in.md, w_any, dst_any);
    dnnl::inner_product_forward::primitive_desc pd(d, UserScratchpadAttr(p.activation), engine_);
    Value src = Ensure(in, pd.src_desc(), node.name);
    std::vector<std::pair<int, SlotRef>> args = {
        {DNNL_ARG_SRC, Act(src)},
        {DNNL_ARG_WEIGHTS, AddConstant(w, PlainDesc(w.shape), pd.weights_desc())}};
    if (has_bias) args.push_back({DNNL_ARG_BIAS, AddConstant(Init(node, 2), b_md, b_md)});
    Value out{NewActivation(pd.dst_desc()), pd.dst_desc()};
    args.push_back({DNNL_ARG_DST, Act(out)});
    AddStep(dnnl::inner_product_forward(pd), pd.scratchpad_desc(), std::move(args), node.name);
    return out;
  }

  const Graph& graph_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unique_ptr<Plan> plan_;
  std::map<std::string, Shape> shapes_;
  std::map<std::string, Value> values_;
};

absl::StatusOr<std::unique_ptr<Plan>> Plan::Compile(const Graph& graph, int64_t batch,
                                                    const dnnl::engine& engine) {
  try {
    return PlanBuilder(graph, batch, engine).Build();
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN failed to compile the plan: ", e.what()));
  }
}

}  // namespace cnnserve::engine
