// Running models: contexts in parallel on one shared model, thread counts,
// the classifier head, and run-time errors.
#include <algorithm>
#include <thread>

#include "engine/classifier_head.h"
#include "engine/cost.h"
#include "engine/model.h"
#include "engine/zoo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/process_threads.h"

namespace cnnserve::engine {
namespace {

TEST(ExecutionTest, ContextsOnSeveralThreadsShareOneModelAndAgree) {
  auto model = Model::Load("zoo:resnet20_cifar");
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> input = DeterministicInput(4 * 3 * 32 * 32);
  auto reference_ctx = (*model)->CreateContext();
  std::vector<Tensor> reference;
  ASSERT_TRUE((*model)->Run(*reference_ctx, 4, input, &reference).ok());

  std::vector<std::vector<Tensor>> results(4);
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      auto ctx = (*model)->CreateContext(1 + t % 2);  // 1 and 2 threads side by side
      for (int i = 0; i < 5; ++i) ASSERT_TRUE((*model)->Run(*ctx, 4, input, &results[t]).ok());
    });
  }
  for (auto& w : workers) w.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_THAT(r[0].data, ::testing::Pointwise(::testing::FloatNear(1e-4f), reference[0].data));
  }
}

TEST(ExecutionTest, LargeBatchesSplitAcrossThreadsGiveTheSameResults) {
  auto model = Model::Load("zoo:resnet20_cifar");
  ASSERT_TRUE(model.ok()) << model.status();
  // 18 items on 2 threads: two single-threaded sub-batches of 9; 17 items
  // do not split evenly and run as one batch on both threads.
  for (int64_t batch : {18, 17}) {
    const std::vector<float> input = DeterministicInput(batch * 3 * 32 * 32);
    std::vector<Tensor> one, two;
    ASSERT_TRUE((*model)->Run(*(*model)->CreateContext(1), batch, input, &one).ok());
    ASSERT_TRUE((*model)->Run(*(*model)->CreateContext(2), batch, input, &two).ok());
    ASSERT_EQ(two[0].shape, (Shape{batch, 10}));
    EXPECT_THAT(two[0].data, ::testing::Pointwise(::testing::FloatNear(1e-4f), one[0].data));
  }
}

TEST(ExecutionTest, ABatchAgreesWithItsImagesOneAtATime) {
  // oneDNN picks kernels and blockings by batch size: each item of a batch
  // must give the logits it gives alone.
  auto model = Model::Load("zoo:resnet20_cifar");
  ASSERT_TRUE(model.ok()) << model.status();
  constexpr int64_t kItem = 3 * 32 * 32;
  const std::vector<float> input = DeterministicInput(3 * kItem);
  auto ctx = (*model)->CreateContext(1);
  std::vector<Tensor> batch;
  ASSERT_TRUE((*model)->Run(*ctx, 3, input, &batch).ok());
  for (int64_t i = 0; i < 3; ++i) {
    const std::vector<float> one_input(input.begin() + i * kItem, input.begin() + (i + 1) * kItem);
    std::vector<Tensor> one;
    ASSERT_TRUE((*model)->Run(*ctx, 1, one_input, &one).ok());
    const std::vector<float> row(batch[0].data.begin() + i * 10, batch[0].data.begin() + (i + 1) * 10);
    EXPECT_THAT(row, ::testing::Pointwise(::testing::FloatNear(1e-4f), one[0].data)) << "item " << i;
  }
}

TEST(ExecutionTest, LoadingAndCompilingLeaveNoOpenMpThreadsBehind) {
  // libgomp keeps a pool of threads for each thread that ran a parallel
  // region; more pool threads than cores make every primitive pay a futex
  // wake-up (engine/fresh_thread.h). Compiling must not leave the loading
  // thread with a pool, only running a batch on 2 threads may.
  std::thread([] {
    const int before = ThreadsInProcess();
    auto model = Model::Load("zoo:resnet20_cifar");
    ASSERT_TRUE(model.ok()) << model.status();
    ASSERT_TRUE((*model)->Prepare(1, 2).ok());
    ASSERT_TRUE((*model)->Prepare(3, 2).ok());
    // A compiling thread that was joined can take a moment to leave /proc.
    EXPECT_TRUE(ThreadsComeBackTo(before)) << ThreadsInProcess() << " threads, want " << before;
    std::vector<Tensor> out;
    ASSERT_TRUE((*model)->Run(*(*model)->CreateContext(2), 1, DeterministicInput(3 * 32 * 32), &out).ok());
    EXPECT_TRUE(ThreadsComeBackTo(before + 1))
        << "the running thread keeps one OpenMP thread: " << ThreadsInProcess() << ", want " << before + 1;
  }).join();
}

TEST(ExecutionTest, AContextHoldsTheMemoryOfItsLargestBatchNotTheSumOverBatchSizes) {
  auto model = Model::Load("zoo:resnet20_cifar");
  ASSERT_TRUE(model.ok()) << model.status();
  constexpr int64_t kItem = 3 * 32 * 32;
  const std::vector<float> input = DeterministicInput(8 * kItem);
  // Every size, growing then shrinking: each result matches a context that
  // never ran anything else, so no plan reads another plan's stale binding.
  auto shared = (*model)->CreateContext(1);
  size_t largest_alone = 0, sum_alone = 0;
  for (int64_t batch : {1, 3, 8, 2, 5, 8, 1}) {
    const absl::Span<const float> items(input.data(), batch * kItem);
    std::vector<Tensor> got, fresh;
    ASSERT_TRUE((*model)->Run(*shared, batch, items, &got).ok());
    auto alone = (*model)->CreateContext(1);
    ASSERT_TRUE((*model)->Run(*alone, batch, items, &fresh).ok());
    EXPECT_THAT(got[0].data, ::testing::Pointwise(::testing::FloatEq(), fresh[0].data)) << batch;
    largest_alone = std::max(largest_alone, alone->memory_bytes());
    sum_alone += alone->memory_bytes();
  }
  // The arena and the scratchpad each grow to their largest, which may come
  // from different sizes, so allow a little over the largest single run;
  // one buffer per batch size would hold about the sum (here ~2.4x).
  EXPECT_LT(shared->memory_bytes(), largest_alone * 3 / 2)
      << "largest alone " << largest_alone << ", sum " << sum_alone;
}

TEST(ExecutionTest, PlannerReusesActivationMemory) {
  auto model = Model::Load("zoo:resnet18");
  ASSERT_TRUE(model.ok());
  auto bytes = (*model)->ActivationBytes(8);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_LT(bytes->first * 2, bytes->second) << "arena " << bytes->first << " vs " << bytes->second;
}

// The zoo ResNets keep BatchNormalization nodes until FoldBatchNorm folds
// them: what is left is one weight per parameter the layers use, not the
// unfolded convolution weights and BatchNorm statistics beside them.
TEST(ExecutionTest, FoldedBatchNormsLeaveNoUnreadWeightsBehind) {
  auto model = Model::Load("zoo:resnet18");
  ASSERT_TRUE(model.ok()) << model.status();
  int64_t held = 0, used = 0;
  for (const auto& [name, tensor] : (*model)->graph().initializers) held += NumElements(tensor.shape);
  auto layers = GraphCost((*model)->graph(), 1);
  ASSERT_TRUE(layers.ok()) << layers.status();
  for (const LayerCost& layer : *layers) used += layer.params;
  EXPECT_EQ(held, used);
}

TEST(ExecutionTest, WrongInputRankIsAClearErrorAtLoad) {
  Graph g;
  g.inputs.push_back({"x", {-1, 3, 8}});  // rank 3 into a 2-D convolution
  g.initializers["w"] = {{4, 3, 3, 3}, std::vector<float>(108)};
  ConvParams p;
  p.kernel = {3, 3};
  p.strides = {1, 1};
  p.dilations = {1, 1};
  p.pads_begin = {0, 0};
  p.pads_end = {0, 0};
  g.nodes.push_back({"conv", {"x", "w"}, {"y"}, p});
  g.outputs.push_back({"y", {}});
  auto m = Model::FromGraph(g);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), ::testing::HasSubstr("rank-4 NCHW"));
}

TEST(ClassifierHeadTest, SoftmaxIsStableAndSumsToOne) {
  auto p = Softmax(std::vector<float>{1000.0f, 1001.0f, 999.0f});
  float sum = 0;
  for (float v : p) sum += v;
  EXPECT_NEAR(sum, 1.0f, 1e-6f);
  EXPECT_GT(p[1], p[0]);
  EXPECT_FALSE(std::isnan(p[0]));
}

TEST(ClassifierHeadTest, TopKIsBestFirstAndClamped) {
  auto top = TopK(std::vector<float>{0.1f, 0.7f, 0.2f, 0.7f}, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].index, 1);  // tie: lower index first
  EXPECT_EQ(top[1].index, 3);
  EXPECT_EQ(top[2].index, 2);
  EXPECT_EQ(TopK(std::vector<float>{1, 2}, 10).size(), 2u);
}

}  // namespace
}  // namespace cnnserve::engine
