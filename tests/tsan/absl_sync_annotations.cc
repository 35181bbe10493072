// ThreadSanitizer annotations for Debian's uninstrumented Abseil.
//
// absl::Mutex, absl::CondVar and absl::Notification synchronise with
// atomics and futexes inside libabsl_synchronization.so, which Debian does
// not build with TSan, so TSan sees no happens-before edge through them and
// reports every access they guard as a race. Linked into a TSan test
// binary (CMake option CNNSERVE_TSAN_ABSL), this file defines those
// functions in the executable, so every caller (ours, and gRPC's through
// the dynamic linker) reaches these first: each forwards to Abseil's own
// definition (dlsym RTLD_NEXT) and tells TSan what it did, as an
// instrumented Abseil does (a release on the mutex's address before it is
// let go, an acquire after it is taken).
//
// A Condition is evaluated inside Abseil, under the lock but before the
// waiter's call returns, sometimes by the thread that is unlocking; so each
// one passed in is wrapped to acquire the mutex before it reads anything
// and release it after (Abseil may let the lock go next, unannotated).
//
// Readers release and acquire too: that adds reader-to-reader edges, which
// can hide a race only between two readers that write, and such a reader
// is itself a bug the writer-side edges still expose.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// Abseil's definition of the function whose mangled name is `symbol`.
template <typename Fn>
Fn Real(const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: %s not found in Abseil: %s\n", symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

void Acquired(const void* mu) { __tsan_acquire(const_cast<void*>(mu)); }
void Releasing(const void* mu) { __tsan_release(const_cast<void*>(mu)); }

// `cond`, evaluated by a thread that holds `mu`. A LockWhen waiter builds
// this (and its condition) before it holds the lock, and Abseil hands it to
// the evaluating thread through its own atomics; so building it releases on
// its address and the evaluator acquires there before it reads it.
struct UnderLock {
  UnderLock(const absl::Mutex* m, const absl::Condition* c) : mu(m), cond(c) { Releasing(this); }
  const absl::Mutex* mu;
  const absl::Condition* cond;
};
bool EvalUnderLock(UnderLock* u) {
  Acquired(u);
  Acquired(u->mu);
  const bool met = u->cond->Eval();
  Releasing(u->mu);  // Abseil may let go of the lock next, unannotated
  return met;
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

}  // namespace

#define CNNSERVE_REAL(type, symbol)             \
  static const auto real = Real<type>(symbol);

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  CNNSERVE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquired(this);
}

void Mutex::ReaderLock() {
  CNNSERVE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquired(this);
}

bool Mutex::TryLock() {
  CNNSERVE_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquired(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  CNNSERVE_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquired(this);
  return locked;
}

void Mutex::Unlock() {
  CNNSERVE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  Releasing(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  CNNSERVE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Releasing(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  CNNSERVE_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  real(this, held);
  Acquired(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  CNNSERVE_REAL(void (*)(Mutex*, const Condition&),
                "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  real(this, held);
  Acquired(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Duration),
                "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  const bool met = real(this, held, timeout);
  Acquired(this);  // locked either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Time),
                "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  const bool met = real(this, held, deadline);
  Acquired(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Duration),
                "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  const bool met = real(this, held, timeout);
  Acquired(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Time),
                "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  const bool met = real(this, held, deadline);
  Acquired(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  CNNSERVE_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  Releasing(this);
  real(this, held);
  Acquired(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Duration),
                "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  Releasing(this);
  const bool met = real(this, held, timeout);
  Acquired(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  CNNSERVE_REAL(bool (*)(Mutex*, const Condition&, Time),
                "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  UnderLock u{this, &cond};
  const Condition held(&EvalUnderLock, &u);
  Releasing(this);
  const bool met = real(this, held, deadline);
  Acquired(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  CNNSERVE_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Releasing(mu);
  real(this, mu);
  Acquired(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  CNNSERVE_REAL(bool (*)(CondVar*, Mutex*, Duration),
                "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Releasing(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquired(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  CNNSERVE_REAL(bool (*)(CondVar*, Mutex*, Time),
                "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Releasing(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquired(mu);
  return timed_out;
}

void Notification::Notify() {
  CNNSERVE_REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  Releasing(this);
  real(this);
}

void Notification::WaitForNotification() const {
  CNNSERVE_REAL(void (*)(const Notification*), "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquired(this);
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  CNNSERVE_REAL(bool (*)(const Notification*, Duration),
                "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquired(this);
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  CNNSERVE_REAL(bool (*)(const Notification*, Time),
                "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquired(this);
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
