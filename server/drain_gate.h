// The server's shutdown gate, shared by the gRPC services.
//
// gRPC's Server::Shutdown() ends every call that has reached the server but
// whose handler has not run yet (a request still arriving) with CANCELLED,
// not UNAVAILABLE (grpc/grpc#41785). So shutdown closes this gate first:
// readiness turns false and handlers refuse new work with UNAVAILABLE, and
// only once calls have stopped arriving (load balancers have taken the
// server out) does the server call gRPC's Shutdown().
#ifndef CNNSERVE_SERVER_DRAIN_GATE_H_
#define CNNSERVE_SERVER_DRAIN_GATE_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace cnnserve::server {

class DrainGate {
 public:
  void Close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // True when the gate is closed: the caller refuses its call, and the
  // refusal counts as traffic that has not stopped yet.
  bool Refuse();

  // Waits until no call was refused for `quiet`, or until `deadline`.
  // Returns whether calls stopped.
  bool AwaitQuiet(absl::Duration quiet, absl::Time deadline) const;

 private:
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> last_refusal_nanos_{0};
};

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_DRAIN_GATE_H_
