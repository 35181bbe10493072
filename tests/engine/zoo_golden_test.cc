// Whole models against PyTorch: the zoo's architectures, given the same
// deterministic weights and input as tools/export_models.py gave PyTorch,
// must reproduce PyTorch's logits to 1e-4 of the largest logit; and the
// CIFAR ResNet-20 that torch.onnx.export wrote must too, through the ONNX
// importer (the zoo and the ONNX path agree on the same weights).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "engine/model.h"
#include "engine/zoo.h"
#include "gtest/gtest.h"

namespace cnnserve::engine {
namespace {

struct Golden {
  std::string model;
  int64_t batch = 0;
  std::vector<float> logits;
};

// Lines of "model batch logits..." as tools/export_models.py writes them.
std::vector<Golden> ReadGoldens(const std::string& path) {
  std::ifstream in(path);
  std::vector<Golden> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    Golden g;
    s >> g.model >> g.batch;
    for (float v; s >> v;) g.logits.push_back(v);
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<Golden> ReadGoldens() { return ReadGoldens(CNNSERVE_SOURCE_DIR "/tests/data/zoo_golden.txt"); }

void ExpectMatchesGolden(const Model& model, const Golden& golden) {
  const int64_t per_item = ItemElements(model.input().shape);
  const std::vector<float> input = DeterministicInput(golden.batch * per_item);
  auto ctx = model.CreateContext();
  std::vector<Tensor> out;
  absl::Status s = model.Run(*ctx, golden.batch, input, &out);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(out[0].data.size(), golden.logits.size());
  float max_logit = 0, max_error = 0;
  for (size_t i = 0; i < golden.logits.size(); ++i) {
    max_logit = std::max(max_logit, std::fabs(golden.logits[i]));
    max_error = std::max(max_error, std::fabs(out[0].data[i] - golden.logits[i]));
  }
  EXPECT_LE(max_error, 1e-4f * max_logit)
      << golden.model << " batch " << golden.batch << ": max abs error " << max_error
      << " against max |logit| " << max_logit;
}

class ZooGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooGoldenTest, MatchesPyTorchAtBatchOneAndThree) {
  auto graph = BuildZooModel(GetParam());
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto model = Model::FromGraph(*std::move(graph));
  ASSERT_TRUE(model.ok()) << model.status();
  int checked = 0;
  for (const Golden& g : ReadGoldens()) {
    if (g.model != GetParam()) continue;
    ExpectMatchesGolden(**model, g);
    ++checked;
  }
  EXPECT_EQ(checked, 2) << "tests/data/zoo_golden.txt has no batch 1 and 3 lines for " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Models, ZooGoldenTest,
                         ::testing::Values("lenet5", "alexnet", "alexnet_lrn", "vgg11", "resnet18",
                                           "resnet20_cifar"));

TEST(OnnxGoldenTest, TorchExportedCifarResNet20MatchesPyTorch) {
  auto model = Model::Load(CNNSERVE_SOURCE_DIR "/tests/data/resnet20_cifar.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  int checked = 0;
  for (const Golden& g : ReadGoldens()) {
    if (g.model != "resnet20_cifar") continue;
    ExpectMatchesGolden(**model, g);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(OnnxGoldenTest, ResidualAddsAndReluFuseIntoConvolutions) {
  auto model = Model::Load(CNNSERVE_SOURCE_DIR "/tests/data/resnet20_cifar.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  int convs = 0, others = 0;
  for (const Node& node : (*model)->graph().nodes) {
    (std::holds_alternative<ConvParams>(node.params) ? convs : others)++;
  }
  // 19 3x3 convs + 2 projections; only the pool, flatten and fc remain beside them.
  EXPECT_EQ(convs, 21);
  EXPECT_EQ(others, 3);
}

TEST(ZooTest, UnknownNameListsTheKnownOnes) {
  auto g = BuildZooModel("zoo:resnet9000");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(g.status().message().find("zoo:resnet18"), std::string::npos);
}

TEST(ZooTest, EveryZooModelBuildsAndValidates) {
  for (const std::string& name : ZooModels()) {
    auto g = BuildZooModel(name);
    ASSERT_TRUE(g.ok()) << name << ": " << g.status();
    EXPECT_TRUE(ValidateGraph(*g).ok()) << name;
  }
}

}  // namespace
}  // namespace cnnserve::engine

namespace cnnserve::engine {
namespace {

// The big models (AlexNet, VGG-11/16, ResNet-18/50 as torch.onnx.export
// writes them) are too large to commit: `tools/export_models.py
// --onnx_dir=DIR` writes them with goldens, and this test checks them when
// CNNSERVE_BIG_MODELS_DIR=DIR is set (tests/conformance/check_big_models).
TEST(BigModelsTest, TorchExportedModelsMatchPyTorch) {
  const char* dir = std::getenv("CNNSERVE_BIG_MODELS_DIR");
  if (dir == nullptr) GTEST_SKIP() << "CNNSERVE_BIG_MODELS_DIR is not set";
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (!absl::EndsWith(path, ".golden.txt")) continue;
    const std::string onnx = path.substr(0, path.size() - 11) + ".onnx";
    auto model = Model::Load(onnx);
    ASSERT_TRUE(model.ok()) << model.status();
    for (const Golden& g : ReadGoldens(path)) {
      SCOPED_TRACE(onnx);
      ExpectMatchesGolden(**model, g);
    }
    std::printf("checked %s\n", onnx.c_str());
    ++models;
  }
  EXPECT_GT(models, 0) << "no <model>.golden.txt in " << dir;
}

}  // namespace
}  // namespace cnnserve::engine
