#include "client/svg_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cnnserve::client {
namespace {

constexpr double kWidth = 720, kHeight = 440;
constexpr double kLeft = 70, kRight = 150, kTop = 40, kBottom = 50;

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
double NiceMax(double v) {
  if (!(v > 0)) return 1;
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

}  // namespace

std::string LatencyThroughputSvg(const std::vector<PlotPoint>& points, const std::string& title) {
  double max_x = 0, max_y = 0;
  for (const PlotPoint& p : points) {
    max_x = std::max(max_x, p.throughput);
    max_y = std::max({max_y, p.p50_ms, p.p90_ms, p.p99_ms});
  }
  max_x = NiceMax(max_x * 1.05);
  max_y = NiceMax(max_y * 1.05);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto x = [&](double v) { return kLeft + v / max_x * plot_w; };
  auto y = [&](double v) { return kTop + plot_h - v / max_y * plot_h; };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"24\" font-size=\"15\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kLeft, Escape(title));
  // Axes, grid and ticks.
  for (int i = 0; i <= 5; ++i) {
    const double xv = max_x * i / 5, yv = max_y * i / 5;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                          x(xv), kTop, x(xv), kTop + plot_h, x(xv), kTop + plot_h + 16, xv);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                          kLeft, y(yv), kLeft + plot_w, y(yv), kLeft - 6, y(yv) + 4, yv);
  }
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                        "stroke=\"black\"/>\n"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">throughput (requests/s)</text>\n"
                        "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
                        "text-anchor=\"middle\">latency (ms)</text>\n",
                        kLeft, kTop, plot_w, plot_h, kLeft + plot_w / 2, kHeight - 12,
                        kTop + plot_h / 2, kTop + plot_h / 2);
  struct Series {
    const char* name;
    const char* color;
    double PlotPoint::*field;
  } series[] = {{"p50", "#1f77b4", &PlotPoint::p50_ms},
                {"p90", "#ff7f0e", &PlotPoint::p90_ms},
                {"p99", "#d62728", &PlotPoint::p99_ms}};
  for (size_t s = 0; s < 3; ++s) {
    std::string path;
    for (const PlotPoint& p : points) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "" : " ", x(p.throughput),
                            y(p.*series[s].field));
    }
    absl::StrAppendFormat(&svg, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                          path, series[s].color);
    for (const PlotPoint& p : points) {
      absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s %s: %.1f req/s, %.2f ms</title></circle>\n",
                            x(p.throughput), y(p.*series[s].field), series[s].color,
                            Escape(p.label), series[s].name, p.throughput, p.*series[s].field);
    }
    const double ly = kTop + 10 + 20 * s;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          kLeft + plot_w + 15, ly, kLeft + plot_w + 40, ly, series[s].color,
                          kLeft + plot_w + 46, ly + 4, series[s].name);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace cnnserve::client
