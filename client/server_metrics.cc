#include "client/server_metrics.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace cnnserve::client {

ServerCounters ParseServerCounters(const std::string& text, const std::string& model) {
  ServerCounters c;
  const std::string label = "model=\"" + model + "\"";
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::StrContains(line, label)) continue;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (brace == absl::string_view::npos || space == absl::string_view::npos) continue;
    const absl::string_view name = line.substr(0, brace);
    double value = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    if (name == "cnnserve_requests_total") c.requests += value;
    else if (name == "cnnserve_queue_duration_seconds_sum") c.queue_seconds += value;
    else if (name == "cnnserve_queue_duration_seconds_count") c.queue_count += value;
    else if (name == "cnnserve_compute_duration_seconds_sum") c.compute_seconds += value;
    else if (name == "cnnserve_compute_duration_seconds_count") c.batches += value;
    else if (name == "cnnserve_batch_size_sum") c.batch_items += value;
  }
  return c;
}

ServerDelta Delta(const ServerCounters& before, const ServerCounters& after) {
  ServerDelta d;
  d.requests = static_cast<int64_t>(after.requests - before.requests + 0.5);
  d.batches = static_cast<int64_t>(after.batches - before.batches + 0.5);
  const double queued = after.queue_count - before.queue_count;
  if (queued > 0) d.mean_queue_ms = (after.queue_seconds - before.queue_seconds) / queued * 1e3;
  if (d.batches > 0) {
    d.mean_compute_ms = (after.compute_seconds - before.compute_seconds) / d.batches * 1e3;
    d.mean_batch_size = (after.batch_items - before.batch_items) / d.batches;
  }
  return d;
}

}  // namespace cnnserve::client
