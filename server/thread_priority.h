// Where the threads that run batches sit in the Linux scheduler, relative
// to the threads that serve RPCs.
#ifndef CNNSERVE_SERVER_THREAD_PRIORITY_H_
#define CNNSERVE_SERVER_THREAD_PRIORITY_H_

namespace cnnserve::server {

// Called once on each batcher worker before its first batch. The worker and
// the OpenMP threads it later starts (they inherit it) run:
//  - at nice +5, so that a refusal, a health check or a metrics scrape
//    gets a core ahead of a batch when inference saturates the cores;
//  - with a short scheduler slice (0.1 ms) where the kernel has per-task
//    slices (EEVDF, Linux 6.12 and later): a woken RPC thread otherwise
//    waits out the running batch thread's whole slice (about 3 ms here)
//    before it gets the core, once for each thread a request passes.
// Best effort: an older kernel keeps the default slice.
void RunBelowServingThreads();

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_THREAD_PRIORITY_H_
