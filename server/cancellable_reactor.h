// CancellableReactor: the reactor of a unary inference RPC that runs a
// callback when the caller cancels (an HTTP/2 RST_STREAM, or its deadline
// passing), so that a request waiting in a model's queue is answered and
// leaves the queue at once, freeing its slot and the queue-depth gauge,
// rather than when a worker or a full queue next looks at it.
//
// Created with `new` in the RPC method and returned to gRPC, which owns it:
// it deletes itself in OnDone(). Thread-safe: OnCancel() comes from a gRPC
// thread, at most once, and may race with set_on_cancel().
#ifndef CNNSERVE_SERVER_CANCELLABLE_REACTOR_H_
#define CNNSERVE_SERVER_CANCELLABLE_REACTOR_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"

namespace cnnserve::server {

class CancellableReactor : public grpc::ServerUnaryReactor {
 public:
  // Runs `on_cancel` once when the caller cancels; at once if it already
  // has. Call it before Finish(): after that the reactor may be gone.
  void set_on_cancel(std::function<void()> on_cancel);

  void OnCancel() override;
  void OnDone() override;

 private:
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_CANCELLABLE_REACTOR_H_
