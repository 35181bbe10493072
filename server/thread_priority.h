// Where cnnserve's threads sit in the Linux scheduler. Under load the
// cores are shared by batch threads (long, throughput-bound) and RPC threads
// (short bursts whose wait is a client's latency), so the RPC threads must
// get a core as soon as they wake.
//
// On Linux 6.12 and later (EEVDF with per-task slices) a woken thread takes
// the core from a running one only if its virtual deadline is earlier, and
// a thread's deadline is its slice away; otherwise it waits for the next
// scheduler tick (4 ms at the common 250 Hz). With the default slice (1.4 ms
// on 2 cores) a woken RPC thread often loses to a batch thread and waits
// for that tick, once for each thread a request passes through. The
// shortest slice (0.1 ms) for every thread makes the wake-up decide.
// Older kernels ignore the slice; nice still applies.
#ifndef CNNSERVE_SERVER_THREAD_PRIORITY_H_
#define CNNSERVE_SERVER_THREAD_PRIORITY_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cnnserve::server {

// The calling thread, and the threads it starts afterwards (they inherit
// it), ask for the shortest slice, at their current nice. The server's
// main calls it before it starts any thread; so does bench/short_slice for
// a load generator that shares the server's cores.
void UseShortSchedulerSlices();

// How batch threads yield to the serving threads (--batch_thread_policy).
enum class BatchThreadPolicy {
  // nice +5 with the short slice: the default, safe on a shared host.
  kNice,
  // SCHED_IDLE: a batch thread runs only when no other thread of its cgroup
  // wants the core, so a woken RPC thread preempts it at once. For a
  // server with a cgroup of its own (a container): on a shared host any
  // busy process would starve inference.
  kIdle,
};
// "nice" or "idle"; anything else is an InvalidArgument naming both.
absl::StatusOr<BatchThreadPolicy> ParseBatchThreadPolicy(absl::string_view name);
// Process-wide; main sets it before any model loads.
void SetBatchThreadPolicy(BatchThreadPolicy policy);

// Called once on each batcher worker before its first batch: the policy
// above, so that refusals, health checks and metrics scrapes go ahead of
// batches when inference saturates the cores. The OpenMP threads the
// worker starts inherit it.
void RunBelowServingThreads();

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_THREAD_PRIORITY_H_
