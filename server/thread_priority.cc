#include "server/thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace cnnserve::server {
namespace {

constexpr int kInferenceNiceness = 5;  // above the RPC threads'
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

int CurrentNice(pid_t tid) { return getpriority(PRIO_PROCESS, static_cast<id_t>(tid)); }

// Sets the calling thread's nice and asks for the short slice. A thread
// under another policy than SCHED_OTHER or SCHED_BATCH (someone ran the
// server with chrt) keeps it and gets only the nice.
void SetThisThread(pid_t tid, int nice) {
  const int policy = sched_getscheduler(tid);
  if (policy == SCHED_OTHER || policy == SCHED_BATCH) {
    SchedAttr attr{};
    attr.size = sizeof(attr);
    attr.sched_policy = static_cast<uint32_t>(policy);
    attr.sched_nice = nice;
    attr.sched_runtime = kShortSliceNanos;
    if (syscall(SYS_sched_setattr, tid, &attr, 0u) == 0) return;
  }
  setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice);
}

pid_t ThisThread() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::atomic<BatchThreadPolicy> batch_policy{BatchThreadPolicy::kNice};

// SCHED_IDLE for the calling thread; false if the kernel refused it.
bool MakeThisThreadIdle(pid_t tid) {
  SchedAttr attr{};
  attr.size = sizeof(attr);
  attr.sched_policy = SCHED_IDLE;
  attr.sched_runtime = kShortSliceNanos;
  return syscall(SYS_sched_setattr, tid, &attr, 0u) == 0;
}

}  // namespace

void UseShortSchedulerSlices() {
  const pid_t tid = ThisThread();
  SetThisThread(tid, CurrentNice(tid));
}

absl::StatusOr<BatchThreadPolicy> ParseBatchThreadPolicy(absl::string_view name) {
  if (name == "nice") return BatchThreadPolicy::kNice;
  if (name == "idle") return BatchThreadPolicy::kIdle;
  return absl::InvalidArgumentError(
      absl::StrCat("batch thread policy '", name, "': expected 'nice' or 'idle'"));
}

void SetBatchThreadPolicy(BatchThreadPolicy policy) { batch_policy.store(policy); }

void RunBelowServingThreads() {
  const pid_t tid = ThisThread();
  if (batch_policy.load() == BatchThreadPolicy::kIdle) {
    if (MakeThisThreadIdle(tid)) return;
    // A seccomp profile or an old kernel may refuse it: say so once, since
    // the operator asked for idle and gets nice.
    const int error = errno;
    static std::once_flag warned;
    std::call_once(warned, [error] {
      Log(Severity::kWarning, "SCHED_IDLE refused; batch threads run at nice +5 instead",
          {{"reason", std::strerror(error)}});
    });
  }
  SetThisThread(tid, std::min(19, CurrentNice(tid) + kInferenceNiceness));
}

}  // namespace cnnserve::server
