// Whole-model golden test: the committed digits LeNet-5, run by the engine on
// the held-out split that tools/train_digits.py wrote, must reproduce
// PyTorch's logits and the exact accuracy the training script printed.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/image/image.h"
#include "engine/model.h"
#include "gtest/gtest.h"

namespace cnnserve::engine {
namespace {

constexpr char kModel[] = CNNSERVE_SOURCE_DIR "/models/digits_lenet5/1/model.onnx";

struct Example {
  int label;
  std::vector<float> input;   // [1, 32, 32]
  std::vector<float> logits;  // PyTorch's
};

std::vector<Example> ReadHeldOut() {
  std::ifstream in(CNNSERVE_SOURCE_DIR "/tests/data/digits_heldout.csv");
  std::vector<Example> examples;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    EXPECT_EQ(f.size(), 1u + 64 + 10);
    Example e;
    EXPECT_TRUE(absl::SimpleAtoi(f[0], &e.label));
    image::Image img{8, 8, 1, {}};
    for (int i = 1; i <= 64; ++i) {
      int v = 0;
      EXPECT_TRUE(absl::SimpleAtoi(f[i], &v));
      img.pixels.push_back(static_cast<uint8_t>(v));
    }
    image::AppendChwFloat(image::ResizeNearest(img, 32, 32), &e.input);
    for (int i = 65; i < 75; ++i) {
      float v = 0;
      EXPECT_TRUE(absl::SimpleAtof(f[i], &v));
      e.logits.push_back(v);
    }
    examples.push_back(std::move(e));
  }
  return examples;
}

int ArgMax(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (v[i] > v[best]) best = i;
  return best;
}

TEST(DigitsModelTest, MatchesPyTorchLogitsAndAccuracyOnHeldOutSplit) {
  const std::vector<Example> examples = ReadHeldOut();
  ASSERT_EQ(examples.size(), 360u);
  int expected_correct = 0, expected_total = 0;
  std::ifstream acc(CNNSERVE_SOURCE_DIR "/tests/data/digits_accuracy.txt");
  ASSERT_TRUE(acc >> expected_correct >> expected_total);

  auto model = Model::Load(kModel);
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  std::vector<float> batch;
  for (const Example& e : examples) batch.insert(batch.end(), e.input.begin(), e.input.end());
  std::vector<Tensor> out;
  ASSERT_TRUE((*model)->Run(*ctx, examples.size(), batch, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape, (Shape{360, 10}));

  int correct = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const float* logits = &out[0].data[i * 10];
    for (int k = 0; k < 10; ++k) {
      ASSERT_NEAR(logits[k], examples[i].logits[k], 1e-4f) << "example " << i << " class " << k;
    }
    correct += ArgMax(logits, 10) == examples[i].label;
  }
  EXPECT_EQ(expected_total, 360);
  EXPECT_EQ(correct, expected_correct);
}

TEST(DigitsModelTest, SingleItemBatchesAgreeWithTheFullBatch) {
  const std::vector<Example> examples = ReadHeldOut();
  auto model = Model::Load(kModel);
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  for (size_t i = 0; i < 20; ++i) {
    std::vector<Tensor> out;
    ASSERT_TRUE((*model)->Run(*ctx, 1, examples[i].input, &out).ok());
    ASSERT_EQ(out[0].shape, (Shape{1, 10}));
    for (int k = 0; k < 10; ++k) EXPECT_NEAR(out[0].data[k], examples[i].logits[k], 1e-4f);
  }
}

TEST(DigitsModelTest, RejectsAnInputOfTheWrongSize) {
  auto model = Model::Load(kModel);
  ASSERT_TRUE(model.ok());
  auto ctx = (*model)->CreateContext();
  std::vector<float> input(1023);
  std::vector<Tensor> out;
  absl::Status s = (*model)->Run(*ctx, 1, input, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("needs 1024"), std::string::npos) << s;
}

}  // namespace
}  // namespace cnnserve::engine
