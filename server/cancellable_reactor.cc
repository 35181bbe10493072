#include "server/cancellable_reactor.h"

#include <utility>

namespace cnnserve::server {

void CancellableReactor::set_on_cancel(std::function<void()> on_cancel) {
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      on_cancel_ = std::move(on_cancel);
      return;
    }
  }
  on_cancel();
}

void CancellableReactor::OnCancel() {
  std::function<void()> run;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    run = std::move(on_cancel_);
  }
  // Outside the lock: it may answer the RPC, which calls back into gRPC.
  if (run) run();
}

// gRPC calls OnDone last, after OnCancel has returned and after Finish;
// it orders them inside libgrpc++ (tests/tsan.supp says why TSan is told).
void CancellableReactor::OnDone() { delete this; }

}  // namespace cnnserve::server
