#include "server/thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

// The kernel's view of the calling thread's slice, where it shows it
// (Linux 6.6+ with scheduler debugging); -1 when it does not.
long SliceNanos() {
  std::ifstream in("/proc/thread-self/sched");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("se.slice", 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  }
  return -1;
}

// Linux 6.12 and later honour a requested slice; older ones keep their
// default one.
bool KernelHasSlices() {
  std::ifstream version("/proc/sys/kernel/osrelease");
  int major = 0, minor = 0;
  char dot = 0;
  version >> major >> dot >> minor;
  return major > 6 || (major == 6 && minor >= 12);
}

// What a fresh thread sees before and after calling `set`, and what a
// thread it starts afterwards (as gRPC and OpenMP do) sees.
struct Observed {
  int nice_before = -100, nice = -100, child_nice = -100;
  long slice = 0, child_slice = 0;
};
Observed OnAFreshThread(void (*set)()) {
  Observed o;
  auto nice = [] { return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))); };
  std::thread worker([&] {
    o.nice_before = nice();
    set();
    o.nice = nice();
    o.slice = SliceNanos();
    std::thread child([&] {
      o.child_nice = nice();
      o.child_slice = SliceNanos();
    });
    child.join();
  });
  worker.join();
  return o;
}

TEST(ThreadPriorityTest, ServingThreadsKeepTheirNiceAndGetAShortSlice) {
  const Observed o = OnAFreshThread(&UseShortSchedulerSlices);
  EXPECT_EQ(o.nice, o.nice_before);
  EXPECT_EQ(o.child_nice, o.nice);
  if (o.slice < 0) GTEST_SKIP() << "this kernel does not show per-thread slices";
  if (KernelHasSlices()) {
    EXPECT_EQ(o.slice, 100000);
    EXPECT_EQ(o.child_slice, 100000);
  }
}

TEST(ThreadPriorityTest, BatchThreadsRunFiveNiceLowerWithAShortSlice) {
  const Observed o = OnAFreshThread(&RunBelowServingThreads);
  EXPECT_EQ(o.nice, o.nice_before + 5);
  EXPECT_EQ(o.child_nice, o.nice);
  if (o.slice < 0) GTEST_SKIP() << "this kernel does not show per-thread slices";
  if (KernelHasSlices()) {
    EXPECT_EQ(o.slice, 100000);
    EXPECT_EQ(o.child_slice, 100000);
  }
}

TEST(ThreadPriorityTest, IdleBatchThreadsRunUnderSchedIdleAndTheirThreadsInheritIt) {
  SetBatchThreadPolicy(BatchThreadPolicy::kIdle);
  int policy = -1, child_policy = -1;
  std::thread worker([&] {
    RunBelowServingThreads();
    policy = sched_getscheduler(0);
    std::thread child([&] { child_policy = sched_getscheduler(0); });
    child.join();
  });
  worker.join();
  SetBatchThreadPolicy(BatchThreadPolicy::kNice);
  EXPECT_EQ(policy, SCHED_IDLE);
  EXPECT_EQ(child_policy, SCHED_IDLE);
}

TEST(ThreadPriorityTest, PolicyNamesAreNiceAndIdle) {
  EXPECT_EQ(ParseBatchThreadPolicy("nice").value(), BatchThreadPolicy::kNice);
  EXPECT_EQ(ParseBatchThreadPolicy("idle").value(), BatchThreadPolicy::kIdle);
  const auto bad = ParseBatchThreadPolicy("realtime");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "batch thread policy 'realtime': expected 'nice' or 'idle'");
}

}  // namespace
}  // namespace cnnserve::server
