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

#include "gtest/gtest.h"
#include "tests/process_threads.h"

namespace cnnserve::server {
namespace {

// Waits up to 5 s for the ticker to reach `want` ticks.
bool TicksReach(const PreemptionTicker& ticker, int64_t want) {
  for (int i = 0; i < 500 && ticker.ticks() < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ticker.ticks() >= want;
}

// Cpus_allowed_list of each thread of the process.
std::multiset<std::string> ThreadAffinities() {
  std::multiset<std::string> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) out.insert(line.substr(line.find_last_of(" \t") + 1));
    }
  }
  return out;
}

TEST(PreemptionTickerTest, AllowedCpusHoldTheCpuThisThreadRunsOn) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_NE(std::find(cpus.begin(), cpus.end(), sched_getcpu()), cpus.end());
}

TEST(PreemptionTickerTest, TicksOnlyWhileABatchRuns) {
  PreemptionTicker ticker(absl::Milliseconds(1), {AllowedCpus().front()});
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ticker.ticks(), 0) << "no batch ran";

  ticker.BatchStarted();
  ticker.BatchStarted();  // two batches at once
  EXPECT_TRUE(TicksReach(ticker, 5));
  ticker.BatchEnded();
  const int64_t one_running = ticker.ticks();
  EXPECT_TRUE(TicksReach(ticker, one_running + 5)) << "one batch still runs";

  ticker.BatchEnded();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a tick in progress ends
  const int64_t idle = ticker.ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ticker.ticks(), idle) << "ticked with no batch running";

  ticker.BatchStarted();
  EXPECT_TRUE(TicksReach(ticker, idle + 5)) << "a later batch ticks again";
  ticker.BatchEnded();
}

TEST(PreemptionTickerTest, StartsOneThreadPinnedToEachCpuAndEndsThem) {
  const std::vector<int> cpus = AllowedCpus();
  const int before = ThreadsInProcess();
  const std::multiset<std::string> affinities_before = ThreadAffinities();
  {
    PreemptionTicker ticker(absl::Milliseconds(1), cpus);
    ticker.BatchStarted();
    EXPECT_TRUE(TicksReach(ticker, 10 * static_cast<int64_t>(cpus.size())));
    ticker.BatchEnded();
    EXPECT_EQ(ThreadsInProcess(), before + static_cast<int>(cpus.size()));
    std::multiset<std::string> added = ThreadAffinities();
    for (const std::string& a : affinities_before) added.erase(added.find(a));
    std::multiset<std::string> want;
    for (int cpu : cpus) want.insert(std::to_string(cpu));
    EXPECT_EQ(added, want) << "each new thread is pinned to one CPU, one per CPU";
  }
  EXPECT_TRUE(ThreadsComeBackTo(before));
}

TEST(PreemptionTickerTest, BatchesTickTheProcessTickerOnceStarted) {
  { ScopedBatchTicking before_start; }  // does nothing, and does not crash
  const int before = ThreadsInProcess();
  PreemptionTicker* ticker = StartProcessPreemptionTicker(absl::Milliseconds(1), {AllowedCpus().front()});
  EXPECT_EQ(ThreadsInProcess(), before + 1);
  EXPECT_EQ(StartProcessPreemptionTicker(absl::Milliseconds(5), AllowedCpus()), ticker)
      << "a second start keeps the first ticker";
  EXPECT_EQ(ThreadsInProcess(), before + 1);
  {
    ScopedBatchTicking batch;
    EXPECT_TRUE(TicksReach(*ticker, 5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t idle = ticker->ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ticker->ticks(), idle) << "ticked after the batch ended";
}

}  // namespace
}  // namespace cnnserve::server
