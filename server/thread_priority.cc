#include "server/thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace cnnserve::server {
namespace {

constexpr int kInferenceNiceness = 5;
constexpr uint64_t kShortSliceNanos = 100'000;  // the kernel's minimum

// struct sched_attr as of Linux 3.14 (SCHED_ATTR_SIZE_VER0); glibc 2.36 has
// no wrapper for sched_setattr.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;  // SCHED_OTHER on 6.12+: the task's slice
  uint64_t sched_deadline;
  uint64_t sched_period;
};

void SetThisThread(int nice) {
  const auto tid = static_cast<pid_t>(syscall(SYS_gettid));
  SchedAttr attr{};
  attr.size = sizeof(attr);
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = nice;
  attr.sched_runtime = kShortSliceNanos;
  if (syscall(SYS_sched_setattr, tid, &attr, 0u) != 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice);
  }
}

}  // namespace

void RunBelowServingThreads() { SetThisThread(kInferenceNiceness); }

}  // namespace cnnserve::server
