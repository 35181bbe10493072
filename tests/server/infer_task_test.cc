// RunInferBatch with inputs decoded on the batch's worker (decode_item):
// every item is decoded once into its task's rows, a failing item answers
// its own task only, and the rest of the batch gets the same logits as a
// batch of plain tensors.
#include "server/infer_task.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kItem = 32 * 32;  // zoo:lenet5 takes [N, 1, 32, 32]

float Pixel(int64_t item, int64_t i) { return static_cast<float>((item * 7 + i) % 11) / 11.0f; }

struct Answer {
  absl::StatusOr<std::vector<engine::Tensor>> out = absl::UnknownError("not answered");
  int calls = 0;
};

std::unique_ptr<InferTask> Task(int64_t items, Answer* answer) {
  auto t = std::make_unique<InferTask>();
  t->items = items;
  t->enqueued = absl::Now();
  t->done = [answer](absl::StatusOr<std::vector<engine::Tensor>> out) {
    answer->out = std::move(out);
    ++answer->calls;
  };
  return t;
}

class InferTaskTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto model = engine::Model::Load("zoo:lenet5");
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    context_ = model_->CreateContext(GetParam());
  }
  // The logits of one item with pixels Pixel(item, *), run alone.
  std::vector<float> Reference(int64_t item) {
    std::vector<float> in(kItem);
    for (int64_t i = 0; i < kItem; ++i) in[i] = Pixel(item, i);
    std::vector<engine::Tensor> out;
    EXPECT_TRUE(model_->Run(*context_, 1, in, &out).ok());
    return out[0].data;
  }

  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::ExecutionContext> context_;
  Metrics metrics_{"test", "test", "test"};
};

TEST_P(InferTaskTest, DecodesEachItemOnceAndAFailureAnswersOnlyItsTask) {
  const ModelMetrics& m = *metrics_.ForModel("lenet", "1", 8);
  // Items are numbered across the batch: a (0, 1) decoded, b (2) a plain
  // tensor, c (3, 4) decoded with item 1 failing, d (5) decoded.
  Answer a, b, c, d;
  std::mutex mu;
  std::multiset<int64_t> decoded;
  auto decoder = [&](int64_t first, int64_t failing) {
    return [&, first, failing](int64_t i, float* out) -> absl::Status {
      {
        std::lock_guard<std::mutex> lock(mu);
        decoded.insert(first + i);
      }
      if (i == failing) return absl::InvalidArgumentError("image 1: not a JPEG or PNG");
      for (int64_t k = 0; k < kItem; ++k) out[k] = Pixel(first + i, k);
      return absl::OkStatus();
    };
  };
  std::vector<std::unique_ptr<BatchTask>> batch;
  auto ta = Task(2, &a);
  ta->decode_item = decoder(0, -1);
  auto tb = Task(1, &b);
  tb->input.resize(kItem);
  for (int64_t k = 0; k < kItem; ++k) tb->input[k] = Pixel(2, k);
  auto tc = Task(2, &c);
  tc->decode_item = decoder(3, 1);
  auto td = Task(1, &d);
  td->decode_item = decoder(5, -1);
  batch.push_back(std::move(ta));
  batch.push_back(std::move(tb));
  batch.push_back(std::move(tc));
  batch.push_back(std::move(td));
  RunInferBatch(*model_, *context_, m, std::move(batch));

  // a's 2, c's 2 and d's 1, each once; b came as a tensor.
  EXPECT_EQ(decoded, (std::multiset<int64_t>{0, 1, 3, 4, 5}));
  for (Answer* x : {&a, &b, &c, &d}) EXPECT_EQ(x->calls, 1);
  ASSERT_FALSE(c.out.ok());
  EXPECT_EQ(c.out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.out.status().message()), HasSubstr("image 1: not a JPEG"));
  struct Expect {
    Answer* answer;
    std::vector<int64_t> items;
  };
  for (const Expect& e : {Expect{&a, {0, 1}}, Expect{&b, {2}}, Expect{&d, {5}}}) {
    ASSERT_TRUE(e.answer->out.ok()) << e.answer->out.status();
    const engine::Tensor& logits = (*e.answer->out)[0];
    ASSERT_EQ(logits.shape[0], static_cast<int64_t>(e.items.size()));
    const int64_t classes = logits.shape[1];
    for (size_t r = 0; r < e.items.size(); ++r) {
      std::vector<float> want = Reference(e.items[r]);
      for (int64_t k = 0; k < classes; ++k) {
        EXPECT_NEAR(logits.data[r * classes + k], want[k], 1e-4f) << "item " << e.items[r];
      }
    }
  }
}

TEST_P(InferTaskTest, ABatchWhoseEveryTaskFailsToDecodeRunsNothing) {
  const ModelMetrics& m = *metrics_.ForModel("lenet", "1", 8);
  Answer a, b;
  std::vector<std::unique_ptr<BatchTask>> batch;
  for (Answer* x : {&a, &b}) {
    auto t = Task(3, x);
    t->decode_item = [](int64_t i, float*) {
      return absl::InvalidArgumentError(absl::StrCat("image ", i, " is truncated"));
    };
    batch.push_back(std::move(t));
  }
  RunInferBatch(*model_, *context_, m, std::move(batch));
  for (Answer* x : {&a, &b}) {
    EXPECT_EQ(x->calls, 1);
    EXPECT_EQ(x->out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(x->out.status().message()), HasSubstr("is truncated"));
  }
}

// One thread and two: with two, the items decode on the context's threads.
INSTANTIATE_TEST_SUITE_P(Threads, InferTaskTest, ::testing::Values(1, 2));

}  // namespace
}  // namespace cnnserve::server
