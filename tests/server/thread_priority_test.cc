#include "server/thread_priority.h"

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

TEST(ThreadPriorityTest, ServingThreadsKeepTheirNiceAndGetAShortSlice) {
  int before = -100, after = -100, child_nice = -100;
  long slice = 0, child_slice = 0;
  std::thread worker([&] {
    const auto tid = static_cast<id_t>(syscall(SYS_gettid));
    before = getpriority(PRIO_PROCESS, tid);
    UseShortSchedulerSlices();
    after = getpriority(PRIO_PROCESS, tid);
    slice = SliceNanos();
    std::thread child([&] {
      child_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
      child_slice = SliceNanos();
    });
    child.join();
  });
  worker.join();
  EXPECT_EQ(after, before);
  EXPECT_EQ(child_nice, before);
  if (slice < 0) GTEST_SKIP() << "this kernel does not show per-thread slices";
  if (KernelHasSlices()) {
    EXPECT_EQ(slice, 100000);
    EXPECT_EQ(child_slice, 100000);
  }
}

TEST(ThreadPriorityTest, BatchThreadsRunFiveNiceLowerWithAShortSlice) {
  int nice = -100, before = -100, other = -100;
  long slice = 0, other_slice = 0;
  std::thread worker([&] {
    const auto tid = static_cast<id_t>(syscall(SYS_gettid));
    before = getpriority(PRIO_PROCESS, tid);
    RunBelowServingThreads();
    nice = getpriority(PRIO_PROCESS, tid);
    slice = SliceNanos();
    // A thread the worker starts (as OpenMP does) inherits both.
    std::thread child([&] {
      other = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
      other_slice = SliceNanos();
    });
    child.join();
  });
  worker.join();
  EXPECT_EQ(nice, before + 5);
  EXPECT_EQ(other, nice);
  if (slice < 0) GTEST_SKIP() << "this kernel does not show per-thread slices";
  if (KernelHasSlices()) {
    EXPECT_EQ(slice, 100000);
    EXPECT_EQ(other_slice, 100000);
  }
}

}  // namespace
}  // namespace cnnserve::server
