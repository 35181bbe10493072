// The ONNX importer on hand-built models: what it accepts, and that every
// malformed or unsupported model is a clear error naming what was wrong.
#include "engine/onnx_import.h"

#include <string>

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
