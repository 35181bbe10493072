// The same small net, exported by torch.onnx.export at opsets 9, 11, 13 and
// 17 (tools/export_opset_models.py), imports and matches PyTorch at each:
// Pad folded into AveragePool, a standalone Pad of 0.25 whose pads PyTorch
// computes with ConstantOfShape/Reshape/Slice/Transpose, LocalResponseNorm
// as PyTorch decomposes it, Clip as attributes and as inputs, Shape/
// Gather/Unsqueeze/Concat chains into Reshape, residual Add, Softmax.
#include <cmath>
#include <fstream>

#include "engine/model.h"
#include "engine/zoo.h"
#include "gtest/gtest.h"

namespace cnnserve::engine {
namespace {

class OpsetTest : public ::testing::TestWithParam<int> {};

TEST_P(OpsetTest, ImportsAndMatchesPyTorch) {
  const std::string path = std::string(CNNSERVE_SOURCE_DIR "/tests/data/opsets/net_opset") +
                           std::to_string(GetParam()) + ".onnx";
  auto model = Model::Load(path);
  ASSERT_TRUE(model.ok()) << model.status();
  std::ifstream in(CNNSERVE_SOURCE_DIR "/tests/data/opsets/net_golden.txt");
  std::vector<float> want;
  for (float v; in >> v;) want.push_back(v);
  ASSERT_EQ(want.size(), 20u);
  auto ctx = (*model)->CreateContext();
  std::vector<Tensor> out;
  ASSERT_TRUE((*model)->Run(*ctx, 2, DeterministicInput(2 * 3 * 12 * 12), &out).ok());
  ASSERT_EQ(out[0].shape, (Shape{2, 10}));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out[0].data[i], want[i], 1e-5f) << i;
}

INSTANTIATE_TEST_SUITE_P(Opsets, OpsetTest, ::testing::Values(9, 11, 13, 17));

TEST(OpsetLrnTest, AnEvenLocalResponseNormIsRefusedWithTheReason) {
  auto model = Model::Load(CNNSERVE_SOURCE_DIR "/tests/data/opsets/lrn_even_opset13.onnx");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("LocalResponseNorm with the even size 4"), std::string::npos)
      << model.status();
}

}  // namespace
}  // namespace cnnserve::engine
