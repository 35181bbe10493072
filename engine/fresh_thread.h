// RunOnFreshThread: runs one-off OpenMP work (compiling a plan, warming up,
// timing) on a thread of its own, so that the OpenMP threads it starts end
// with it.
//
// libgomp keeps a pool of threads for every thread that has started a
// parallel region, until that thread exits. While the process holds more
// pool threads than cores, it spins only ~100 iterations before putting a
// waiting thread to sleep, so every primitive of a plan then pays a futex
// wake-up on each of its threads. ResNet-50 at batch 1 on 2 cores ran at
// 30 img/s with the loading thread's pool left behind and 34 without it.
// Only the threads that run batches for good should keep a pool.
#ifndef CNNSERVE_ENGINE_FRESH_THREAD_H_
#define CNNSERVE_ENGINE_FRESH_THREAD_H_

#include <exception>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

namespace cnnserve::engine {

// Calls fn() on a new thread, waits for it and returns its result; an
// exception fn throws is rethrown here.
template <typename Fn>
std::invoke_result_t<Fn&> RunOnFreshThread(Fn&& fn) {
  std::optional<std::invoke_result_t<Fn&>> result;
  std::exception_ptr error;
  std::thread([&] {
    try {
      result.emplace(fn());
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  if (error) std::rethrow_exception(error);
  return *std::move(result);
}

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_FRESH_THREAD_H_
