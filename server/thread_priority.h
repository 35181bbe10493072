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

namespace cnnserve::server {

// The calling thread, and the threads it starts afterwards (they inherit
// it), ask for the shortest slice, at their current nice. The server's
// main calls it before it starts any thread; so does bench/short_slice for
// a load generator that shares the server's cores.
void UseShortSchedulerSlices();

// Called once on each batcher worker before its first batch: nice +5 (so
// that refusals, health checks and metrics scrapes go ahead of batches when
// inference saturates the cores) with the short slice. The OpenMP threads
// the worker starts inherit both.
void RunBelowServingThreads();

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_THREAD_PRIORITY_H_
