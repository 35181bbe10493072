// The batcher with a fake runner: batching, limits, and draining. No sleeps:
// the runner blocks on a Notification to hold the worker busy.
#include "server/batcher.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

struct FakeTask : BatchTask {
  explicit FakeTask(int64_t n) : n(n) {}
  int64_t size() const override { return n; }
  int64_t n;
};

// Records batch sizes; the first batch waits until `release` is notified.
struct Recorder {
  absl::Mutex mu;
  std::vector<int64_t> batches ABSL_GUARDED_BY(mu);
  int64_t tasks_run ABSL_GUARDED_BY(mu) = 0;
  absl::Notification first_started;
  absl::Notification release;

  Batcher::RunBatch Runner() {
    return [this](std::vector<std::unique_ptr<BatchTask>> batch) {
      if (!first_started.HasBeenNotified()) {
        first_started.Notify();
        release.WaitForNotification();
      }
      int64_t items = 0;
      for (auto& t : batch) items += t->size();
      absl::MutexLock lock(&mu);
      batches.push_back(items);
      tasks_run += batch.size();
    };
  }
};

absl::Status Schedule(Batcher& b, int64_t n) {
  std::unique_ptr<BatchTask> task = std::make_unique<FakeTask>(n);
  absl::Status s = b.Schedule(&task);
  EXPECT_EQ(s.ok(), task == nullptr) << "Schedule must consume the task iff it returns OK";
  return s;
}

TEST(BatcherTest, GroupsTasksQueuedWhileTheWorkerIsBusy) {
  Recorder rec;
  {
    auto b = Batcher::Create({.max_batch_size = 8, .max_queued_tasks = 100}, rec.Runner());
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(Schedule(**b, 1).ok());
    rec.first_started.WaitForNotification();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Schedule(**b, 3).ok());  // 15 items queued
    rec.release.Notify();
  }  // destruction drains
  absl::MutexLock lock(&rec.mu);
  EXPECT_THAT(rec.batches, ::testing::ElementsAre(1, 6, 6, 3));
  EXPECT_EQ(rec.tasks_run, 6);
}

TEST(BatcherTest, RejectsWhenQueueIsFull) {
  Recorder rec;
  auto b = Batcher::Create({.max_batch_size = 4, .max_queued_tasks = 2}, rec.Runner());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(Schedule(**b, 1).ok());
  rec.first_started.WaitForNotification();
  ASSERT_TRUE(Schedule(**b, 1).ok());
  ASSERT_TRUE(Schedule(**b, 1).ok());
  absl::Status s = Schedule(**b, 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("queue is full"));
  rec.release.Notify();
}

TEST(BatcherTest, RejectsTasksLargerThanMaxBatchSize) {
  Recorder rec;
  auto b = Batcher::Create({.max_batch_size = 4, .max_queued_tasks = 2}, rec.Runner());
  ASSERT_TRUE(b.ok());
  absl::Status s = Schedule(**b, 5);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("max_batch_size 4"));
  EXPECT_EQ(Schedule(**b, 0).code(), absl::StatusCode::kInvalidArgument);
  rec.release.Notify();
}

TEST(BatcherTest, RunsEveryQueuedTaskBeforeDestructionReturns) {
  Recorder rec;
  {
    auto b = Batcher::Create({.max_batch_size = 1, .max_queued_tasks = 100}, rec.Runner());
    ASSERT_TRUE(b.ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(Schedule(**b, 1).ok());
    rec.release.Notify();
  }
  absl::MutexLock lock(&rec.mu);
  EXPECT_EQ(rec.tasks_run, 20);
}

TEST(BatcherTest, CreateRejectsBadOptions) {
  EXPECT_EQ(Batcher::Create({.max_batch_size = 0}, [](auto) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.max_batch_size = 1, .max_queued_tasks = 0}, [](auto) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({}, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cnnserve::server
