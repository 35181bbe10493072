// The instance/thread autotuner with a fake machine whose costs are known,
// so its choice can be asserted, and its cache.
#include "server/autotune.h"

#include <filesystem>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

using ::testing::HasSubstr;

// On the fake 2-core machine one instance of 2 threads has the lowest
// latency at batch 1 (16 ms against 17), but two instances of one thread
// each get more through: at batch 8, 2 x 8 items per 80 ms against 8 per
// 58 ms.
absl::Duration FakeBatchTime(int instances, int64_t batch) {
  return instances == 1 ? absl::Milliseconds(10 + 6 * batch) : absl::Milliseconds(8 + 9 * batch);
}

TuneMeasure FakeMachine(std::vector<absl::Duration>* budgets = nullptr) {
  return [budgets](int instances, int, int64_t batch, absl::Duration budget) -> absl::StatusOr<TuneTrial> {
    if (budgets != nullptr) budgets->push_back(budget);
    TuneTrial t;
    t.batch_latency = FakeBatchTime(instances, batch);
    t.items_per_second = instances * batch / absl::ToDoubleSeconds(t.batch_latency);
    return t;
  };
}

TEST(AutotuneTest, TriesEverySplitOfTheCoresAtEachBatchSizeWithinTheBudget) {
  EXPECT_THAT(TuneCandidates(2), ::testing::ElementsAre(std::pair(1, 2), std::pair(2, 1)));
  EXPECT_THAT(TuneCandidates(4), ::testing::ElementsAre(std::pair(1, 4), std::pair(2, 2), std::pair(4, 1)));
  EXPECT_THAT(TuneBatches(32), ::testing::ElementsAre(1, 8, 32));
  EXPECT_THAT(TuneBatches(1), ::testing::ElementsAre(1));
  std::vector<absl::Duration> budgets;
  auto choice = Autotune({.cores = 2, .max_batch_size = 32, .slo = absl::ZeroDuration(),
                          .budget = absl::Seconds(6)},
                         FakeMachine(&budgets));
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->trials.size(), 6u);
  EXPECT_THAT(budgets, ::testing::Each(absl::Seconds(1)));
}

TEST(AutotuneTest, WithoutAnSloPicksTheLowestLatency) {
  auto choice = Autotune({.cores = 2, .max_batch_size = 32, .slo = absl::ZeroDuration(),
                          .budget = absl::Seconds(1)},
                         FakeMachine());
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->instances, 1);
  EXPECT_EQ(choice->threads, 2);
  EXPECT_THAT(choice->reason, HasSubstr("lowest batch-1 latency"));
}

TEST(AutotuneTest, WithAnSloPicksTheMostThroughputThatMeetsIt) {
  // 200 ms: a batch may take up to 95 ms (wait one, run one, in 95% of it).
  // Batch 32 is too slow for either; 2x1 at batch 8 (80 ms, 200 items/s)
  // beats 1x2 at batch 8 (58 ms, 138 items/s).
  auto choice = Autotune({.cores = 2, .max_batch_size = 32, .slo = absl::Milliseconds(200),
                          .budget = absl::Seconds(1)},
                         FakeMachine());
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->instances, 2);
  EXPECT_EQ(choice->threads, 1);
  EXPECT_THAT(choice->reason, HasSubstr("batch 8"));
  // An SLO no split can meet falls back to the lowest latency.
  choice = Autotune({.cores = 2, .max_batch_size = 32, .slo = absl::Milliseconds(20),
                     .budget = absl::Seconds(1)},
                    FakeMachine());
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->instances, 1);
  EXPECT_THAT(choice->reason, HasSubstr("no split keeps"));
}

TEST(AutotuneTest, AMeasurementErrorIsReturned) {
  auto choice = Autotune({.cores = 2, .max_batch_size = 4, .slo = absl::ZeroDuration(),
                          .budget = absl::Seconds(1)},
                         [](int, int, int64_t, absl::Duration) -> absl::StatusOr<TuneTrial> {
                           return absl::InternalError("engine failed");
                         });
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInternal);
}

TEST(AutotuneTest, TheCacheGivesBackAChoiceOnlyForTheSameKey) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("autotune_cache_" + std::to_string(getpid())))
                               .string();
  std::filesystem::remove(path);
  const std::string key = TuneCacheKey(2, "model-a", 32, absl::Milliseconds(100));
  EXPECT_FALSE(ReadTuneCache(path, key).has_value());  // no file yet
  TuneChoice c;
  c.instances = 2;
  c.threads = 1;
  c.reason = "because";
  ASSERT_TRUE(WriteTuneCache(path, key, c).ok());
  const std::string other = TuneCacheKey(2, "model-b", 32, absl::Milliseconds(100));
  c.instances = 1;
  c.threads = 2;
  ASSERT_TRUE(WriteTuneCache(path, other, c).ok());
  auto a = ReadTuneCache(path, key);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->instances, 2);
  EXPECT_EQ(a->threads, 1);
  EXPECT_TRUE(a->cached);
  EXPECT_THAT(a->reason, HasSubstr("because"));
  EXPECT_EQ(ReadTuneCache(path, other)->instances, 1);
  EXPECT_FALSE(ReadTuneCache(path, TuneCacheKey(4, "model-a", 32, absl::Milliseconds(100))).has_value());
  EXPECT_NE(key.find("cores=2"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace cnnserve::server
