// The ONNX importer on hand-built models: what it accepts, and that every
// malformed or unsupported model is a clear error naming what was wrong.
#include "engine/onnx_import.h"

#include <functional>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace cnnserve::engine {
namespace {

using ::testing::HasSubstr;

onnx::TensorProto FloatTensor(const std::string& name, std::vector<int64_t> dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    n *= d;
  }
  for (int64_t i = 0; i < n; ++i) t.add_float_data(0.01f * i);
  return t;
}

// input [N,1,8,8] -> Conv 3x3 (4 filters) -> Relu -> output
onnx::ModelProto SmallModel() {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  for (int d : {1, 8, 8}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  *g->add_initializer() = FloatTensor("w", {4, 1, 3, 3});
  *g->add_initializer() = FloatTensor("b", {4});
  auto* conv = g->add_node();
  conv->set_name("conv");
  conv->set_op_type("Conv");
  conv->add_input("x");
  conv->add_input("w");
  conv->add_input("b");
  conv->add_output("c");
  auto* relu = g->add_node();
  relu->set_name("relu");
  relu->set_op_type("Relu");
  relu->add_input("c");
  relu->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

absl::StatusOr<Graph> Import(const onnx::ModelProto& m) { return ImportOnnx(m.SerializeAsString()); }

TEST(OnnxImportTest, ImportsConvReluWithShapes) {
  auto g = Import(SmallModel());
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->inputs[0].shape, (Shape{-1, 1, 8, 8}));
  EXPECT_EQ(g->outputs[0].shape, (Shape{-1, 4, 6, 6}));
}

TEST(OnnxImportTest, RejectsEmptyAndRandomBytes) {
  EXPECT_EQ(ImportOnnx("").status().code(), absl::StatusCode::kInvalidArgument);
  const char garbage[] = "\xff\xfe garbage \x01\x02\x03";
  auto s = ImportOnnx(std::string(garbage, sizeof(garbage) - 1)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a valid ONNX model"));
}

TEST(OnnxImportTest, RejectsMissingFileWithNotFound) {
  auto s = ImportOnnxFile("/nonexistent/model.onnx").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/model.onnx"));
}

onnx::TensorProto IntTensor(const std::string& name, std::vector<int64_t> dims,
                            std::vector<int64_t> values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t.add_dims(d);
  for (int64_t v : values) t.add_int64_data(v);
  return t;
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, std::vector<std::string> inputs,
                         const std::string& output) {
  onnx::NodeProto* n = g->add_node();
  n->set_name(output);
  n->set_op_type(op);
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  return n;
}

// SmallModel with a Pad after it whose pads come from the int chain
// `chain` adds (it must produce "pads"), as PyTorch writes them.
onnx::ModelProto PaddedModel(const std::function<void(onnx::GraphProto*)>& chain,
                             float value = 0.5f) {
  onnx::ModelProto m = SmallModel();
  onnx::GraphProto* g = m.mutable_graph();
  chain(g);
  onnx::TensorProto v = FloatTensor("value", {});
  v.set_float_data(0, value);
  *g->add_initializer() = v;
  AddNode(g, "Pad", {"y", "pads", "value"}, "z");
  g->mutable_output(0)->set_name("z");
  return m;
}

TEST(OnnxImportTest, PadsFoldedFromConstantOfShapeReshapeSliceTranspose) {
  // F.pad(x, (1, 2, 0, 1)): [1, 2, 0, 1] + zeros -> [4, 2] -> rows reversed
  // -> transposed -> flat: pads [0, 0, 0, 1, 0, 0, 1, 2].
  auto m = PaddedModel([](onnx::GraphProto* g) {
    *g->add_initializer() = IntTensor("zeros_shape", {1}, {4});
    auto* c = AddNode(g, "ConstantOfShape", {"zeros_shape"}, "zeros");
    auto* value = c->add_attribute();
    value->set_name("value");
    *value->mutable_t() = IntTensor("", {1}, {0});
    *g->add_initializer() = IntTensor("given", {4}, {1, 2, 0, 1});
    AddNode(g, "Concat", {"given", "zeros"}, "flat")->add_attribute()->set_name("axis");
    *g->add_initializer() = IntTensor("pairs", {2}, {-1, 2});
    AddNode(g, "Reshape", {"flat", "pairs"}, "rows");
    *g->add_initializer() = IntTensor("starts", {1}, {-1});
    *g->add_initializer() = IntTensor("ends", {1}, {-1000});
    *g->add_initializer() = IntTensor("axes", {1}, {0});
    *g->add_initializer() = IntTensor("steps", {1}, {-1});
    AddNode(g, "Slice", {"rows", "starts", "ends", "axes", "steps"}, "reversed");
    auto* t = AddNode(g, "Transpose", {"reversed"}, "cols")->add_attribute();
    t->set_name("perm");
    t->add_ints(1);
    t->add_ints(0);
    *g->add_initializer() = IntTensor("flat_shape", {1}, {-1});
    AddNode(g, "Reshape", {"cols", "flat_shape"}, "pads");
  });
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status();
  const PadParams& pad = std::get<PadParams>(graph->nodes.back().params);
  EXPECT_EQ(pad.pads_begin, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(pad.pads_end, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(pad.value, 0.5f);
}

TEST(OnnxImportTest, BadIntChainsAndPadValuesAreNamed) {
  struct Case {
    std::function<void(onnx::GraphProto*)> chain;
    float value;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](onnx::GraphProto* g) {
         *g->add_initializer() = IntTensor("huge", {2}, {1 << 20, 1 << 20});
         AddNode(g, "ConstantOfShape", {"huge"}, "pads");
       },
       0.0f, absl::StatusCode::kUnimplemented, "node 'pads' (ConstantOfShape): only small constant shapes"},
      {[](onnx::GraphProto* g) {
         *g->add_initializer() = IntTensor("flat", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
         *g->add_initializer() = IntTensor("shape", {2}, {3, 3});
         AddNode(g, "Reshape", {"flat", "shape"}, "pads");
       },
       0.0f, absl::StatusCode::kInvalidArgument, "does not hold the same number of elements"},
      {[](onnx::GraphProto* g) {
         *g->add_initializer() = IntTensor("flat", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
         *g->add_initializer() = IntTensor("starts", {2}, {0, 0});
         *g->add_initializer() = IntTensor("ends", {1}, {8});
         AddNode(g, "Slice", {"flat", "starts", "ends"}, "pads");
       },
       0.0f, absl::StatusCode::kInvalidArgument, "starts, ends, axes and steps must have the same length"},
      {[](onnx::GraphProto* g) {
         *g->add_initializer() = IntTensor("rows", {4, 2}, {0, 0, 0, 0, 1, 1, 1, 1});
         auto* t = AddNode(g, "Transpose", {"rows"}, "pads")->add_attribute();
         t->set_name("perm");
         t->add_ints(0);
         t->add_ints(2);
       },
       0.0f, absl::StatusCode::kInvalidArgument, "node 'pads' (Transpose): perm out of range"},
      {[](onnx::GraphProto* g) { *g->add_initializer() = IntTensor("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1}); },
       std::numeric_limits<float>::quiet_NaN(), absl::StatusCode::kInvalidArgument,
       "the pad value must be finite"},
  };
  for (const Case& c : cases) {
    auto s = Import(PaddedModel(c.chain, c.value)).status();
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

TEST(OnnxImportTest, UnsupportedOpNamesNodeAndOp) {
  onnx::ModelProto m = SmallModel();
  m.mutable_graph()->mutable_node(1)->set_op_type("Elu");
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("node 'relu' (Elu)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not supported"));
}

TEST(OnnxImportTest, UnknownAttributeIsNamed) {
  onnx::ModelProto m = SmallModel();
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("frobnicate");
  a->set_i(1);
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("attribute 'frobnicate'"));
}

TEST(OnnxImportTest, RejectsExternalData) {
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("external data"));
}

TEST(OnnxImportTest, RejectsHugeInitializerClaimWithoutAllocating) {
  onnx::ModelProto m = SmallModel();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_dims();
  for (int64_t d : {1000, 1000, 1000, 1}) w->add_dims(d);
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("1000000000 elements"));
}

TEST(OnnxImportTest, RejectsDanglingEdge) {
  onnx::ModelProto m = SmallModel();
  m.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'nowhere' is not produced"));
}

TEST(OnnxImportTest, RejectsCycle) {
  onnx::ModelProto m = SmallModel();
  m.mutable_graph()->mutable_node(0)->set_input(0, "y");  // conv reads relu's output
  EXPECT_EQ(Import(m).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnnxImportTest, RejectsWeightsThatDoNotFitTheInput) {
  onnx::ModelProto m = SmallModel();
  *m.mutable_graph()->mutable_initializer(0) = FloatTensor("w", {4, 3, 3, 3});
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("node 'conv'"));
}

TEST(OnnxImportTest, RejectsKernelLargerThanInput) {
  onnx::ModelProto m = SmallModel();
  *m.mutable_graph()->mutable_initializer(0) = FloatTensor("w", {4, 1, 9, 9});
  auto s = Import(m).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("larger than the padded input"));
}

}  // namespace
}  // namespace cnnserve::engine
