// IdleExitThread: a thread that runs one piece of work at a time for its
// caller and ends after a while without work.
//
// A batcher worker whose instance has 2 or more threads runs its batches
// through one, so that the OpenMP threads a batch starts belong to it and
// end with it when the model goes idle. libgomp keeps them for the life of
// the thread that started them, and while the process holds more of them
// than cores it stops spinning between regions (engine/fresh_thread.h).
// A repository of several models, each with an instance on all cores,
// would otherwise be in that state as soon as two of them had served a
// request, and every batch of each would pay a futex wake-up per layer.
#ifndef CNNSERVE_SERVER_IDLE_EXIT_THREAD_H_
#define CNNSERVE_SERVER_IDLE_EXIT_THREAD_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cnnserve::server {

class IdleExitThread {
 public:
  explicit IdleExitThread(absl::Duration idle) : idle_(idle) {}
  ~IdleExitThread();
  IdleExitThread(const IdleExitThread&) = delete;
  IdleExitThread& operator=(const IdleExitThread&) = delete;

  // Runs fn on the thread, starting it if it has ended, and returns when fn
  // has. A new thread inherits the caller's scheduling policy and nice
  // value. One caller at a time; fn must not throw.
  void Run(absl::FunctionRef<void()> fn);

 private:
  void Loop();

  const absl::Duration idle_;
  absl::Mutex mu_;
  const absl::FunctionRef<void()>* work_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool alive_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // touched only by Run's caller and the destructor
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_IDLE_EXIT_THREAD_H_
