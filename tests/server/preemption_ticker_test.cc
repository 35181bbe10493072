// PreemptionTicker: one thread per CPU, pinned there, ticking only while a
// batch runs. Whether the ticks shorten waits for a core is measured by
// bench/overload (docs/RELIABILITY.md); a unit test cannot make the kernel
// pick a batch thread over a waiting one on demand.
#include "server/preemption_ticker.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

// Waits up to 5 s for the ticker to reach `want` ticks.
bool TicksReach(const PreemptionTicker& ticker, int64_t want) {
  for (int i = 0; i < 500 && ticker.ticks() < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ticker.ticks() >= want;
}

// Waits up to 5 s for no thread of the ticker to be ticking: each has seen
// that no batch runs and sleeps until one does.
bool AllThreadsSleep(const PreemptionTicker& ticker) {
  for (int i = 0; i < 500 && ticker.ticking_threads() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ticker.ticking_threads() == 0;
}

// Cpus_allowed_list of each thread of the process that is pinned to one
// CPU. Counting these rather than all threads leaves out the threads a
// sanitizer's runtime starts on its own.
std::multiset<std::string> PinnedThreads() {
  std::multiset<std::string> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      const std::string list = line.substr(line.find_last_of(" \t") + 1);
      if (list.find_first_of("-,") == std::string::npos) out.insert(list);
    }
  }
  return out;
}

// `after` without `before`, each element once per occurrence.
std::multiset<std::string> Added(std::multiset<std::string> after, const std::multiset<std::string>& before) {
  for (const std::string& e : before) {
    if (auto it = after.find(e); it != after.end()) after.erase(it);
  }
  return after;
}

// Waits (up to 10 s) for the pinned threads added since `before` to be
// `want`: a new thread pins itself once it runs, and an ended one takes a
// moment to leave /proc.
bool PinnedThreadsAddedBecome(const std::multiset<std::string>& before,
                              const std::multiset<std::string>& want) {
  for (int i = 0; i < 1000 && Added(PinnedThreads(), before) != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Added(PinnedThreads(), before) == want;
}

TEST(PreemptionTickerTest, AllowedCpusHoldTheCpuThisThreadRunsOn) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_NE(std::find(cpus.begin(), cpus.end(), sched_getcpu()), cpus.end());
}

TEST(PreemptionTickerTest, TicksOnlyWhileABatchRuns) {
  PreemptionTicker ticker(absl::Milliseconds(1), {AllowedCpus().front()});
  EXPECT_EQ(ticker.ticking_threads(), 0) << "no batch ran";
  EXPECT_EQ(ticker.ticks(), 0);

  ticker.BatchStarted();
  ticker.BatchStarted();  // two batches at once
  EXPECT_TRUE(TicksReach(ticker, 5));
  EXPECT_EQ(ticker.ticking_threads(), 1);
  ticker.BatchEnded();
  const int64_t one_running = ticker.ticks();
  EXPECT_TRUE(TicksReach(ticker, one_running + 5)) << "one batch still runs";

  ticker.BatchEnded();
  EXPECT_TRUE(AllThreadsSleep(ticker)) << "still ticking with no batch running";

  const int64_t idle = ticker.ticks();
  ticker.BatchStarted();
  EXPECT_TRUE(TicksReach(ticker, idle + 5)) << "a later batch ticks again";
  ticker.BatchEnded();
  EXPECT_TRUE(AllThreadsSleep(ticker));
}

TEST(PreemptionTickerTest, StartsOneThreadPinnedToEachCpuAndEndsThem) {
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "with one CPU every thread looks pinned";
  const std::multiset<std::string> before = PinnedThreads();
  {
    PreemptionTicker ticker(absl::Milliseconds(1), cpus);
    ticker.BatchStarted();
    EXPECT_TRUE(TicksReach(ticker, 10 * static_cast<int64_t>(cpus.size())));
    ticker.BatchEnded();
    EXPECT_TRUE(AllThreadsSleep(ticker));
    std::multiset<std::string> want;
    for (int cpu : cpus) want.insert(std::to_string(cpu));
    EXPECT_TRUE(PinnedThreadsAddedBecome(before, want)) << "one thread pinned to each CPU";
  }
  EXPECT_TRUE(PinnedThreadsAddedBecome(before, {})) << "the threads end with the ticker";
}

// The process's ticker lives as long as the process, so this test holds
// once per process; ctest runs each test in a process of its own.
TEST(PreemptionTickerTest, BatchesTickTheProcessTickerOnceStarted) {
  { ScopedBatchTicking before_start; }  // does nothing, and does not crash
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "with one CPU every thread looks pinned";
  const std::multiset<std::string> before = PinnedThreads();
  PreemptionTicker* ticker = StartProcessPreemptionTicker(absl::Milliseconds(1), {cpus.front()});
  const std::multiset<std::string> one = {std::to_string(cpus.front())};
  EXPECT_TRUE(PinnedThreadsAddedBecome(before, one));
  EXPECT_EQ(StartProcessPreemptionTicker(absl::Milliseconds(5), cpus), ticker)
      << "a second start keeps the first ticker";
  {
    ScopedBatchTicking batch;
    EXPECT_TRUE(TicksReach(*ticker, 5));
  }
  EXPECT_TRUE(AllThreadsSleep(*ticker)) << "still ticking after the batch ended";
}

TEST(PreemptionTickerTest, TheFlagTakesZeroOrAPeriodInRange) {
  EXPECT_EQ(*ParsePreemptionTick(0), absl::ZeroDuration());
  EXPECT_EQ(*ParsePreemptionTick(100), absl::Microseconds(100));
  EXPECT_EQ(*ParsePreemptionTick(2000), absl::Milliseconds(2));
  EXPECT_EQ(*ParsePreemptionTick(100000), absl::Milliseconds(100));
  for (int64_t bad : {-1, 1, 99, 100001}) {
    absl::StatusOr<absl::Duration> tick = ParsePreemptionTick(bad);
    ASSERT_FALSE(tick.ok()) << bad;
    EXPECT_EQ(tick.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(tick.status().message(), absl::StrCat("--preemption_tick_us=", bad,
                                                    ": expected 0 (off) or 100 to 100000 microseconds"));
  }
}

}  // namespace
}  // namespace cnnserve::server
