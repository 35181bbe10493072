// The dynamic batching scheduler with a fake runner and a fake clock:
// batch formation, queue delay, preferred sizes, limits, deadlines,
// cancellation, instances and exactly-once answers. No sleeps: the fake
// clock moves only when told, AwaitSettledForTest() waits for the workers
// to act on it, and runners block on Notifications.
#include "server/batcher.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/clock.h"

namespace cnnserve::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every answer a task got: run in a batch, or failed with a code.
struct Answers {
  absl::Mutex mu;
  std::vector<int64_t> batches ABSL_GUARDED_BY(mu);          // items per batch, in order
  std::vector<absl::StatusCode> failures ABSL_GUARDED_BY(mu);
  std::vector<int> answered ABSL_GUARDED_BY(mu) = std::vector<int>(100000, 0);  // by task id

  std::vector<int64_t> Batches() {
    absl::MutexLock lock(&mu);
    return batches;
  }
  std::vector<absl::StatusCode> Failures() {
    absl::MutexLock lock(&mu);
    return failures;
  }
};

struct FakeTask : BatchTask {
  FakeTask(Answers* answers, int id, int64_t n) : answers(answers), id(id), n(n) {}
  int64_t size() const override { return n; }
  absl::Time deadline() const override { return deadline_at; }
  bool cancelled() const override { return cancel != nullptr && cancel->load(); }
  void Fail(const absl::Status& status) override {
    absl::MutexLock lock(&answers->mu);
    answers->failures.push_back(status.code());
    ++answers->answered[id];
  }
  Answers* answers;
  int id;
  int64_t n;
  absl::Time deadline_at = absl::InfiniteFuture();
  const std::atomic<bool>* cancel = nullptr;
};

// A runner that records batches; while `hold` is set, the first batch
// blocks (its instance stays busy) until `release` is notified.
struct Runner {
  explicit Runner(Answers* answers, bool hold_first = false) : answers(answers), hold(hold_first) {}
  Answers* answers;
  bool hold;
  absl::Notification first_started;
  absl::Notification release;

  Batcher::RunBatch Get() {
    return [this](int, std::vector<std::unique_ptr<BatchTask>> batch) {
      if (hold && !first_started.HasBeenNotified()) {
        first_started.Notify();
        release.WaitForNotification();
      }
      int64_t items = 0;
      absl::MutexLock lock(&answers->mu);
      for (auto& t : batch) {
        items += t->size();
        ++answers->answered[static_cast<FakeTask*>(t.get())->id];
      }
      answers->batches.push_back(items);
    };
  }
};

class BatcherTest : public ::testing::Test {
 protected:
  std::unique_ptr<Batcher> Make(Batcher::Options options, Runner& runner) {
    options.clock = &clock_;
    auto b = Batcher::Create(options, runner.Get());
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *std::move(b) : nullptr;
  }
  absl::Status Schedule(Batcher& b, int64_t n, FakeTask** out = nullptr) {
    auto task = std::make_unique<FakeTask>(&answers_, next_id_++, n);
    if (out != nullptr) *out = task.get();
    std::unique_ptr<BatchTask> base = std::move(task);
    absl::Status s = b.Schedule(&base);
    EXPECT_EQ(s.ok(), base == nullptr) << "Schedule must consume the task iff it returns OK";
    return s;
  }
  // Queues a task of `n` items whose caller has gone once *cancel is true.
  absl::Status ScheduleCancellable(Batcher& b, int64_t n, const std::atomic<bool>* cancel) {
    std::unique_ptr<BatchTask> t = NewTask(n);
    static_cast<FakeTask*>(t.get())->cancel = cancel;
    return b.Schedule(&t);
  }
  std::unique_ptr<BatchTask> NewTask(int64_t n) {
    return std::make_unique<FakeTask>(&answers_, next_id_++, n);
  }

  FakeClock clock_;
  Answers answers_;
  int next_id_ = 0;
};

TEST_F(BatcherTest, GroupsTasksQueuedWhileTheWorkerIsBusy) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 8}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Schedule(*b, 3).ok());  // 15 items queued
  runner.release.Notify();
  b->Stop();
  // 3+3 = 6 and the next 3 would not fit 8: never split, sent at once.
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 6, 6, 3));
}

TEST_F(BatcherTest, WaitsForTheQueueDelayThenSendsWhatItHas) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 8, .max_queue_delay_micros = 100}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  clock_.Advance(absl::Microseconds(60));
  ASSERT_TRUE(Schedule(*b, 2).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
  clock_.Advance(absl::Microseconds(39));  // 99 us after the oldest
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
  clock_.Advance(absl::Microseconds(1));  // the oldest has waited 100 us
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(3));
}

TEST_F(BatcherTest, SendsAtOnceWhenMaxBatchSizeIsReached) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 4, .max_queue_delay_micros = 1'000'000}, runner);
  ASSERT_TRUE(Schedule(*b, 2).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
  ASSERT_TRUE(Schedule(*b, 2).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(4));
}

TEST_F(BatcherTest, SendsAPreferredSizeWithoutWaitingForTheDelay) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 8, .preferred_batch_sizes = {4},
                 .max_queue_delay_micros = 1'000'000}, runner);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Schedule(*b, 1).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
  ASSERT_TRUE(Schedule(*b, 1).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(4));
}

TEST_F(BatcherTest, FormsTheLargestPreferredSizeAndLeavesTheRestToWait) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 8, .preferred_batch_sizes = {2, 4},
                 .max_queue_delay_micros = 1000}, runner);
  ASSERT_TRUE(Schedule(*b, 8).ok());
  runner.first_started.WaitForNotification();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.release.Notify();
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(8, 4));  // 4 of the 5: the largest preferred
  clock_.Advance(absl::Microseconds(1000));
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(8, 4, 1));
}

TEST_F(BatcherTest, SendsWhenTheNextRequestWouldNotFit) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 4, .max_queue_delay_micros = 1000}, runner);
  ASSERT_TRUE(Schedule(*b, 4).ok());
  runner.first_started.WaitForNotification();
  ASSERT_TRUE(Schedule(*b, 3).ok());
  ASSERT_TRUE(Schedule(*b, 2).ok());
  runner.release.Notify();
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(4, 3));  // 3+2 > 4: a request is never split
  clock_.Advance(absl::Microseconds(1000));
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Batches(), ElementsAre(4, 3, 2));
}

TEST_F(BatcherTest, RejectsWhenQueueIsFull) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 4, .max_queue_size = 2}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();
  ASSERT_TRUE(Schedule(*b, 1).ok());
  ASSERT_TRUE(Schedule(*b, 1).ok());
  absl::Status s = Schedule(*b, 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("queue is full"));
  runner.release.Notify();
}

TEST_F(BatcherTest, PrecheckRefusesWhatScheduleWouldBeforeTheTaskIsBuilt) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 4, .max_queue_size = 2}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();  // the only instance is busy
  EXPECT_TRUE(b->Precheck(1, absl::InfiniteFuture()).ok());
  ASSERT_TRUE(Schedule(*b, 1).ok());
  std::atomic<bool> cancel{false};
  ASSERT_TRUE(ScheduleCancellable(*b, 1, &cancel).ok());
  const absl::Status full = b->Precheck(1, absl::InfiniteFuture());
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), ::testing::HasSubstr("queue is full"));
  cancel = true;  // Schedule would drop it to make room, so no refusal now
  EXPECT_TRUE(b->Precheck(1, absl::InfiniteFuture()).ok());
  EXPECT_EQ(b->queued_tasks(), 2);  // asking changed nothing
  EXPECT_THAT(answers_.Failures(), IsEmpty());
  runner.release.Notify();
  b->Stop();
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 1));
}

TEST_F(BatcherTest, RejectsRequestsLargerThanMaxBatchSize) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 4}, runner);
  absl::Status s = Schedule(*b, 5);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("max_batch_size 4"));
}

TEST_F(BatcherTest, ARequestWhoseDeadlinePassesInTheQueueIsAnsweredAndNeverRun) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 8, .max_queue_delay_micros = 1'000'000}, runner);
  FakeTask* task = nullptr;
  std::unique_ptr<BatchTask> t = NewTask(1);
  task = static_cast<FakeTask*>(t.get());
  task->deadline_at = clock_.Now() + absl::Microseconds(50);
  ASSERT_TRUE(b->Schedule(&t).ok());
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Failures(), IsEmpty());
  clock_.Advance(absl::Microseconds(50));
  b->AwaitSettledForTest();
  EXPECT_THAT(answers_.Failures(), ElementsAre(absl::StatusCode::kDeadlineExceeded));
  b->Stop();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
}

TEST_F(BatcherTest, ACancelledRequestIsDroppedFromTheQueue) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 8}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();
  std::atomic<bool> cancel{false};
  ASSERT_TRUE(ScheduleCancellable(*b, 2, &cancel).ok());
  ASSERT_TRUE(Schedule(*b, 3).ok());
  cancel = true;  // the caller goes away while its request waits
  runner.release.Notify();
  b->Stop();
  EXPECT_THAT(answers_.Failures(), ElementsAre(absl::StatusCode::kCancelled));
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 3));
}

TEST_F(BatcherTest, CancelledRequestsFreeTheirQueueSlotsWhileTheInstanceIsBusy) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 8, .max_queue_size = 2}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();  // the only instance is now busy
  std::atomic<bool> cancel{false};
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(ScheduleCancellable(*b, 2, &cancel).ok());
  EXPECT_EQ(Schedule(*b, 4).code(), absl::StatusCode::kResourceExhausted);
  cancel = true;  // both waiting callers go away
  EXPECT_TRUE(Schedule(*b, 4).ok());  // their slots are free at once
  EXPECT_THAT(answers_.Failures(),
              ElementsAre(absl::StatusCode::kCancelled, absl::StatusCode::kCancelled));
  runner.release.Notify();
  b->Stop();
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 4));
}

TEST_F(BatcherTest, DropDeadAnswersCancelledRequestsAtOnceWithoutWaitingForAFullQueue) {
  Runner runner(&answers_, /*hold_first=*/true);
  auto b = Make({.max_batch_size = 8, .max_queue_size = 4}, runner);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();  // the only instance is now busy
  std::atomic<bool> cancel{false};
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(ScheduleCancellable(*b, 2, &cancel).ok());
  ASSERT_TRUE(Schedule(*b, 3).ok());
  b->DropDead();  // nobody has gone yet
  EXPECT_EQ(b->queued_tasks(), 3);
  EXPECT_THAT(answers_.Failures(), IsEmpty());
  cancel = true;
  b->DropDead();  // as the server does when gRPC reports the cancellations
  EXPECT_EQ(b->queued_tasks(), 1);
  EXPECT_THAT(answers_.Failures(),
              ElementsAre(absl::StatusCode::kCancelled, absl::StatusCode::kCancelled));
  runner.release.Notify();
  b->Stop();
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 3));
}

TEST_F(BatcherTest, ARequestCancelledBeforeItIsQueuedIsRefused) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 8}, runner);
  std::atomic<bool> cancel{true};
  const absl::Status refused = ScheduleCancellable(*b, 2, &cancel);
  EXPECT_EQ(refused.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("cancelled before it was queued"));
  b->Stop();
  EXPECT_THAT(answers_.Batches(), IsEmpty());
}

TEST_F(BatcherTest, WithALatencySloARequestThatWouldFinishLateIsShedAtOnce) {
  Runner runner(&answers_, /*hold_first=*/true);
  int shed = 0;
  auto b = Make({.max_batch_size = 8, .latency_slo_micros = 100'000, .on_shed = [&] { ++shed; }},
                runner);
  for (int64_t n : {1, 4, 8}) b->SeedCost(n, absl::Milliseconds(5) + absl::Milliseconds(10) * n);
  ASSERT_TRUE(Schedule(*b, 1).ok());
  runner.first_started.WaitForNotification();  // busy for a predicted 15 ms
  // Each batch of 4 takes 45 ms (about 50 with the margin): one fits in
  // the 90 ms budget behind the running batch, a second would not.
  ASSERT_TRUE(Schedule(*b, 4).ok());
  const absl::Status late = Schedule(*b, 4);
  EXPECT_EQ(late.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(late.message()), ::testing::HasSubstr("latency SLO of 100 ms"));
  EXPECT_EQ(shed, 1);
  // Asked before building the task, the answer is the same, and counted.
  EXPECT_EQ(b->Precheck(4, absl::InfiniteFuture()).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(b->Precheck(1, absl::InfiniteFuture()).ok());
  EXPECT_EQ(shed, 2);
  runner.release.Notify();
  b->Stop();
  EXPECT_THAT(answers_.Batches(), ElementsAre(1, 4));
  const auto state = b->slo_state();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->cost.samples, 5);  // three seeds and the two batches
}

TEST_F(BatcherTest, InstancesRunBatchesInParallel) {
  absl::Notification release;
  std::atomic<int> started{0};
  absl::Notification both_started;
  auto b = Batcher::Create({.max_batch_size = 4, .instances = 2, .clock = &clock_},
                           [&](int instance, std::vector<std::unique_ptr<BatchTask>>) {
                             EXPECT_TRUE(instance == 0 || instance == 1);
                             if (++started == 2) both_started.Notify();
                             release.WaitForNotification();
                           });
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(Schedule(**b, 4).ok());
  ASSERT_TRUE(Schedule(**b, 4).ok());
  both_started.WaitForNotification();  // would hang if one instance ran both
  release.Notify();
}

TEST_F(BatcherTest, StopRunsWhatIsQueuedWithoutWaitingForTheDelay) {
  Runner runner(&answers_);
  auto b = Make({.max_batch_size = 8, .max_queue_delay_micros = 10'000'000}, runner);
  ASSERT_TRUE(Schedule(*b, 2).ok());
  ASSERT_TRUE(Schedule(*b, 3).ok());
  b->Stop();
  EXPECT_THAT(answers_.Batches(), ElementsAre(5));
  EXPECT_EQ(Schedule(*b, 1).code(), absl::StatusCode::kUnavailable);
}

TEST_F(BatcherTest, EveryAcceptedRequestIsAnsweredExactlyOnceUnderManyThreads) {
  Runner runner(&answers_);
  constexpr int kThreads = 8, kPerThread = 2000;
  std::atomic<int> next{0};
  std::atomic<int64_t> accepted_items{0};
  std::vector<int> accepted_ids[kThreads];
  {
    // The real clock: delays and deadlines really pass while threads race.
    auto b = Batcher::Create({.max_batch_size = 16, .preferred_batch_sizes = {8},
                              .max_queue_delay_micros = 200, .max_queue_size = 64,
                              .instances = 2},
                             runner.Get());
    ASSERT_TRUE(b.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const int id = next++;
          const int64_t n = 1 + id % 4;
          auto task = std::make_unique<FakeTask>(&answers_, id, n);
          if (id % 7 == 0) task->deadline_at = absl::Now() + absl::Microseconds(id % 300);
          std::unique_ptr<BatchTask> base = std::move(task);
          if ((*b)->Schedule(&base).ok()) {
            accepted_ids[t].push_back(id);
            accepted_items += n;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
  }  // Stop: everything accepted is answered before this returns
  absl::MutexLock lock(&answers_.mu);
  int64_t accepted = 0, run_items = 0;
  for (auto& ids : accepted_ids) {
    for (int id : ids) {
      EXPECT_EQ(answers_.answered[id], 1) << "task " << id;
      ++accepted;
    }
  }
  int64_t answered = 0;
  for (int a : answers_.answered) answered += a;
  EXPECT_EQ(answered, accepted);  // nothing refused was answered, nothing accepted twice
  for (int64_t items : answers_.batches) {
    EXPECT_LE(items, 16);
    run_items += items;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LE(run_items, accepted_items.load());
}

TEST_F(BatcherTest, CreateRejectsBadOptions) {
  auto run = [](int, std::vector<std::unique_ptr<BatchTask>>) {};
  EXPECT_EQ(Batcher::Create({.max_batch_size = 0}, run).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.max_batch_size = 4, .preferred_batch_sizes = {8}}, run).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.max_batch_size = 1, .max_queue_size = 0}, run).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.max_batch_size = 1, .instances = 0}, run).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.max_batch_size = 1}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cnnserve::server
