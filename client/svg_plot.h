// An SVG chart of latency percentiles (p50, p90, p99) against throughput
// across the load tester's steps, written by hand (no plotting library):
// the picture operators read to find the knee. Pure; thread-safe.
#ifndef CNNSERVE_CLIENT_SVG_PLOT_H_
#define CNNSERVE_CLIENT_SVG_PLOT_H_

#include <string>
#include <vector>

namespace cnnserve::client {

struct PlotPoint {
  double throughput = 0;  // requests/s
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  std::string label;      // e.g. "c=8" or "r=100"
};

std::string LatencyThroughputSvg(const std::vector<PlotPoint>& points, const std::string& title);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_SVG_PLOT_H_
