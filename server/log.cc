#include "server/log.h"

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cnnserve::server {

void Log(Severity severity, std::string_view message) {
  const char level = severity == Severity::kInfo ? 'I' : severity == Severity::kWarning ? 'W' : 'E';
  const std::string line =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) + " " + level +
      " " + std::string(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);  // one write per line: no interleaving
}

}  // namespace cnnserve::server
