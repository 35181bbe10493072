// One logger for the server: a timestamped line per event on stderr.
// Abseil 20220623 has no absl/log; structured (JSON) logs come with the
// observability issue and will replace the body of Log(), not its callers.
#ifndef CNNSERVE_SERVER_LOG_H_
#define CNNSERVE_SERVER_LOG_H_

#include <string_view>

namespace cnnserve::server {

enum class Severity { kInfo, kWarning, kError };

// Thread-safe: each call writes one whole line.
void Log(Severity severity, std::string_view message);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_LOG_H_
