// The server's logs: one logfmt line per event on stderr, e.g.
//   ts=2026-12-04T10:48:33.138Z level=info msg="model ready" model=digits_lenet5 version=1
// Values with spaces, quotes or '=' are quoted. Abseil 20220623 has no
// absl/log; this is the one logger every server module uses.
#ifndef CNNSERVE_SERVER_LOG_H_
#define CNNSERVE_SERVER_LOG_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace cnnserve::server {

enum class Severity { kDebug, kInfo, kWarning, kError };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Thread-safe: each call writes one whole line. Lines below the level set
// by SetLogLevel (default info) are dropped.
void Log(Severity severity, std::string_view message, const LogFields& fields = {});

// "debug", "info", "warning" or "error"; INVALID_ARGUMENT otherwise.
absl::Status SetLogLevel(std::string_view level);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_LOG_H_
