// Status propagation helpers. Abseil 20220623 ships neither RETURN_IF_ERROR
// nor ASSIGN_OR_RETURN, so every cnnserve module uses these two.
#ifndef CNNSERVE_ENGINE_STATUS_MACROS_H_
#define CNNSERVE_ENGINE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::absl::Status cnnserve_status_ = (expr);                  \
    if (!cnnserve_status_.ok()) return cnnserve_status_;       \
  } while (0)

#define CNNSERVE_CONCAT_INNER_(a, b) a##b
#define CNNSERVE_CONCAT_(a, b) CNNSERVE_CONCAT_INNER_(a, b)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; on error returns
// its status, otherwise moves the value into `lhs` (which may declare a variable).
#define ASSIGN_OR_RETURN(lhs, expr) \
  CNNSERVE_ASSIGN_OR_RETURN_IMPL_(CNNSERVE_CONCAT_(cnnserve_statusor_, __LINE__), lhs, expr)

#define CNNSERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // CNNSERVE_ENGINE_STATUS_MACROS_H_
