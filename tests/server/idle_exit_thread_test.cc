// IdleExitThread: work runs on its thread, the thread ends when idle and
// takes the OpenMP threads it started with it, and it restarts on demand.
#include "server/idle_exit_thread.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "server/thread_priority.h"
#include "tests/process_threads.h"

namespace cnnserve::server {
namespace {

TEST(IdleExitThreadTest, RunsTheWorkOnItsThreadAndReturnsWhenItIsDone) {
  IdleExitThread runner(absl::Seconds(10));
  std::thread::id first, second;
  int value = 0;
  runner.Run([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    first = std::this_thread::get_id();
    value = 1;
  });
  EXPECT_EQ(value, 1);
  EXPECT_NE(first, std::this_thread::get_id());
  runner.Run([&] { second = std::this_thread::get_id(); });
  EXPECT_EQ(first, second) << "a busy runner keeps its thread";
}

TEST(IdleExitThreadTest, EndsWithItsOpenMpThreadsWhenIdleAndStartsAgainOnDemand) {
  const int before = ThreadsInProcess();
  IdleExitThread runner(absl::Seconds(1));
  std::atomic<int> team{0};
  for (int round = 0; round < 2; ++round) {
    team = 0;
    runner.Run([&] {
#pragma omp parallel num_threads(2)
      team += 1;
    });
    EXPECT_EQ(team.load(), 2);
    EXPECT_EQ(ThreadsInProcess(), before + 2) << "the runner and one OpenMP thread, in round " << round;
    EXPECT_TRUE(ThreadsComeBackTo(before)) << "still " << ThreadsInProcess() << " threads, want " << before;
  }
}

TEST(IdleExitThreadTest, ANewThreadInheritsTheCallersNiceValue) {
  std::thread([] {
    SetBatchThreadPolicy(BatchThreadPolicy::kNice);
    RunBelowServingThreads();  // nice +5
    const int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    IdleExitThread runner(absl::Seconds(10));
    int theirs = -100;
    runner.Run([&] { theirs = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); });
    EXPECT_EQ(theirs, mine);
    EXPECT_GT(theirs, 0);
  }).join();
}

TEST(IdleExitThreadTest, DestroyingItStopsAnIdleThread) {
  const int before = ThreadsInProcess();
  {
    IdleExitThread runner(absl::Seconds(60));
    runner.Run([] {});
    EXPECT_EQ(ThreadsInProcess(), before + 1);
  }
  EXPECT_TRUE(ThreadsComeBackTo(before));
}

}  // namespace
}  // namespace cnnserve::server
