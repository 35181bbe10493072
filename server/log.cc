#include "server/log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cnnserve::server {
namespace {

std::atomic<int> min_level{static_cast<int>(Severity::kInfo)};

const char* LevelName(Severity s) {
  switch (s) {
    case Severity::kDebug: return "debug";
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "info";
}

// logfmt value: bare when safe, else quoted with \ and " escaped.
std::string Value(std::string_view v) {
  const bool bare = !v.empty() && v.find_first_of(" \"=\\\n\t") == std::string_view::npos;
  if (bare) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out + "\"";
}

}  // namespace

void Log(Severity severity, std::string_view message, const LogFields& fields) {
  if (static_cast<int>(severity) < min_level.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      " level=", LevelName(severity), " msg=", Value(message));
  for (const auto& [key, value] : fields) absl::StrAppend(&line, " ", key, "=", Value(value));
  line += "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);  // one write per line: no interleaving
}

absl::Status SetLogLevel(std::string_view level) {
  for (Severity s : {Severity::kDebug, Severity::kInfo, Severity::kWarning, Severity::kError}) {
    if (level == LevelName(s)) {
      min_level = static_cast<int>(s);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown log level '", std::string(level),
                                                 "'; use debug, info, warning or error"));
}

}  // namespace cnnserve::server
