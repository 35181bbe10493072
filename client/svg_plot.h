// SVG line charts written by hand (no plotting library): latency
// percentiles against throughput across the load tester's steps (the
// picture operators read to find the knee), and any set of named lines with
// an optional reference level, such as p99 against offered rate for several
// scheduler configurations. Pure; thread-safe.
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

struct PlotLine {
  std::string name;
  std::vector<double> x, y;         // same length
  std::vector<std::string> labels;  // per point, for the hover text; may be empty
};

struct PlotAxes {
  std::string title, x_label, y_label;
  // > 0: the y axis stops here; points above are drawn on the edge, hollow.
  double y_cap = 0;
  // > 0: a dashed horizontal line at this level, named reference_label.
  double reference = 0;
  std::string reference_label;
};

std::string LinesSvg(const std::vector<PlotLine>& lines, const PlotAxes& axes);

}  // namespace cnnserve::client

#endif  // CNNSERVE_CLIENT_SVG_PLOT_H_
