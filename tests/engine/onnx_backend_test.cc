// ONNX backend conformance: the per-op test models and data that Debian's
// libonnx-testdata installs, for every op and attribute the importer claims.
// Each case's first input is the activation; its other inputs (weights in
// the node tests) become initializers, as they are in exported models.
// Tolerances are the suite's own: |got - want| <= 1e-7 + 1e-3 * |want|.
#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/onnx_import.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace cnnserve::engine {
namespace {

namespace fs = std::filesystem;
constexpr char kDataDir[] = "/usr/include/onnx/backend/test/data";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

onnx::TensorProto ReadTensor(const fs::path& path) {
  onnx::TensorProto t;
  const std::string bytes = ReadFile(path);
  EXPECT_TRUE(t.ParseFromString(bytes)) << path;
  return t;
}

std::vector<float> Floats(const onnx::TensorProto& t) {
  std::vector<float> v;
  if (t.has_raw_data()) {
    v.resize(t.raw_data().size() / 4);
    std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    v.assign(t.float_data().begin(), t.float_data().end());
  }
  return v;
}

class OnnxBackendTest : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxBackendTest, MatchesReferenceOutputs) {
  const fs::path dir = fs::path(kDataDir) / GetParam();
  ASSERT_TRUE(fs::exists(dir / "model.onnx"))
      << dir << " is missing: install Debian's libonnx-testdata (scripts/install-deps does)";
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(ReadFile(dir / "model.onnx")));
  const fs::path data = dir / "test_data_set_0";

  // Bind every graph input after the first to its test data, as an initializer.
  std::set<std::string> initialized;
  for (const auto& t : model.graph().initializer()) initialized.insert(t.name());
  int index = 0;
  onnx::TensorProto input;
  for (const auto& in : model.graph().input()) {
    if (initialized.count(in.name())) continue;
    onnx::TensorProto t = ReadTensor(data / ("input_" + std::to_string(index) + ".pb"));
    if (index++ == 0) {
      input = t;
      continue;
    }
    t.set_name(in.name());
    *model.mutable_graph()->add_initializer() = t;
  }
  auto graph = ImportOnnx(model.SerializeAsString());
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto m = Model::FromGraph(*std::move(graph));
  ASSERT_TRUE(m.ok()) << m.status();
  auto ctx = (*m)->CreateContext();
  std::vector<Tensor> outputs;
  const std::vector<float> x = Floats(input);
  absl::Status run = (*m)->Run(*ctx, input.dims(0), x, &outputs);
  ASSERT_TRUE(run.ok()) << run;
  ASSERT_EQ(outputs.size(), 1u);
  const onnx::TensorProto want_t = ReadTensor(data / "output_0.pb");
  const std::vector<float> want = Floats(want_t);
  ASSERT_EQ(Shape(want_t.dims().begin(), want_t.dims().end()), outputs[0].shape);
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_LE(std::fabs(outputs[0].data[i] - want[i]), 1e-7 + 1e-3 * std::fabs(want[i]))
        << GetParam() << " element " << i << ": got " << outputs[0].data[i] << ", want " << want[i];
  }
}

// The cases for the ops and attributes the importer claims. Left out on
// purpose: rank-1 inputs (a served model's input has a batch dimension),
// 1-D and 3-D windows, double tensors, Pad modes other than constant, and
// Concat or Gemm cases whose every input is data (this harness turns all but
// the first into weights).
const std::vector<std::string> kCases = {
    // Conv
    "node/test_basic_conv_with_padding", "node/test_basic_conv_without_padding",
    "node/test_conv_with_autopad_same", "node/test_conv_with_strides_and_asymmetric_padding",
    "node/test_conv_with_strides_no_padding", "node/test_conv_with_strides_padding",
    "pytorch-converted/test_Conv2d", "pytorch-converted/test_Conv2d_depthwise",
    "pytorch-converted/test_Conv2d_depthwise_padded", "pytorch-converted/test_Conv2d_depthwise_strided",
    "pytorch-converted/test_Conv2d_depthwise_with_multiplier", "pytorch-converted/test_Conv2d_dilated",
    "pytorch-converted/test_Conv2d_groups", "pytorch-converted/test_Conv2d_groups_thnn",
    "pytorch-converted/test_Conv2d_no_bias", "pytorch-converted/test_Conv2d_padding",
    "pytorch-converted/test_Conv2d_strided",
    // Pooling
    "node/test_maxpool_2d_default", "node/test_maxpool_2d_ceil", "node/test_maxpool_2d_pads",
    "node/test_maxpool_2d_precomputed_pads", "node/test_maxpool_2d_precomputed_same_upper",
    "node/test_maxpool_2d_precomputed_strides", "node/test_maxpool_2d_same_lower",
    "node/test_maxpool_2d_same_upper", "node/test_maxpool_2d_strides",
    "node/test_averagepool_2d_default", "node/test_averagepool_2d_ceil",
    "node/test_averagepool_2d_pads", "node/test_averagepool_2d_pads_count_include_pad",
    "node/test_averagepool_2d_precomputed_pads",
    "node/test_averagepool_2d_precomputed_pads_count_include_pad",
    "node/test_averagepool_2d_precomputed_same_upper", "node/test_averagepool_2d_precomputed_strides",
    "node/test_averagepool_2d_same_lower", "node/test_averagepool_2d_same_upper",
    "node/test_averagepool_2d_strides", "node/test_globalaveragepool",
    "node/test_globalaveragepool_precomputed", "node/test_globalmaxpool",
    "node/test_globalmaxpool_precomputed", "pytorch-converted/test_AvgPool2d",
    "pytorch-converted/test_AvgPool2d_stride", "pytorch-converted/test_MaxPool2d",
    
    // Activations
    "node/test_relu", "node/test_leakyrelu", "node/test_leakyrelu_default",
    "node/test_sigmoid", 
    "pytorch-converted/test_LeakyReLU",
    "pytorch-converted/test_LeakyReLU_with_negval", "pytorch-converted/test_ReLU",
    "pytorch-converted/test_Sigmoid", "pytorch-operator/test_operator_clip",
    // Normalization
    "node/test_batchnorm_epsilon", "node/test_batchnorm_example", "node/test_lrn",
    "node/test_lrn_default", "pytorch-converted/test_BatchNorm2d_eval",
    "pytorch-converted/test_BatchNorm2d_momentum_eval",
    // Elementwise and structure
    "node/test_add", "node/test_add_bcast", 
    
    
    // Linear
    "node/test_gemm_all_attributes", "node/test_gemm_alpha", "node/test_gemm_beta",
    "node/test_gemm_default_no_bias", "node/test_gemm_default_scalar_bias",
    "node/test_gemm_default_single_elem_vector_bias", "node/test_gemm_default_vector_bias",
    "node/test_gemm_default_zero_bias", "node/test_gemm_transposeB", "node/test_matmul_2d",
    "node/test_matmul_3d", "node/test_matmul_4d", "pytorch-converted/test_Linear",
    "pytorch-converted/test_Linear_no_bias",
    // Shapes
    "node/test_flatten_axis1", "node/test_flatten_default_axis", "node/test_flatten_axis2",
    "node/test_flatten_axis3", "node/test_flatten_negative_axis1", "node/test_reshape_extended_dims",
    "node/test_reshape_negative_dim", "node/test_reshape_one_dim", "node/test_reshape_reduced_dims",
    "node/test_reshape_reordered_all_dims", "node/test_reshape_zero_dim",
    "node/test_transpose_default", "node/test_transpose_all_permutations_0",
    "node/test_transpose_all_permutations_3", "node/test_transpose_all_permutations_5",
    
    // Softmax
    "node/test_softmax_axis_0", "node/test_softmax_axis_1", "node/test_softmax_axis_2",
    "node/test_softmax_default_axis", "node/test_softmax_example", "node/test_softmax_large_number",
    "node/test_softmax_negative_axis", "pytorch-converted/test_Softmax",
    // From PyTorch's own exporter tests
    "pytorch-operator/test_operator_conv", "pytorch-operator/test_operator_flatten",
    "pytorch-operator/test_operator_mm", "pytorch-operator/test_operator_permute2",
    "pytorch-converted/test_softmax_lastdim", "pytorch-converted/test_softmax_functional_dim3",
    // Pad (standalone: nothing after it to fold into)
    "node/test_constant_pad", "pytorch-converted/test_ConstantPad2d",
    "pytorch-converted/test_ZeroPad2d",
    // No-ops
    "node/test_dropout_default", "node/test_identity",
};

INSTANTIATE_TEST_SUITE_P(Cases, OnnxBackendTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace cnnserve::engine
