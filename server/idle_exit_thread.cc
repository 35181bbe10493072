#include "server/idle_exit_thread.h"

namespace cnnserve::server {

IdleExitThread::~IdleExitThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void IdleExitThread::Run(absl::FunctionRef<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (!alive_) {
    // It ended after its idle time (alive_ was cleared as its last step under
    // mu_), so joining it cannot wait on the lock held here.
    if (thread_.joinable()) thread_.join();
    alive_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  work_ = &fn;
  done_ = false;
  mu_.Await(absl::Condition(&done_));
}

void IdleExitThread::Loop() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return work_ != nullptr || stopping_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), idle_) || work_ == nullptr) {
      alive_ = false;  // idle too long, or stopping
      return;
    }
    const absl::FunctionRef<void()> fn = *work_;
    work_ = nullptr;
    mu_.Unlock();
    fn();
    mu_.Lock();
    done_ = true;
  }
}

}  // namespace cnnserve::server
