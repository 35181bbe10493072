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

std::string LinesSvg(const std::vector<PlotLine>& lines, const PlotAxes& axes) {
  static constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                            "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  double max_x = 0, max_y = axes.reference;
  for (const PlotLine& l : lines) {
    for (double v : l.x) max_x = std::max(max_x, v);
    for (double v : l.y) max_y = std::max(max_y, v);
  }
  if (axes.y_cap > 0) max_y = std::min(max_y, axes.y_cap);
  max_x = NiceMax(max_x * 1.05);
  max_y = NiceMax(max_y * 1.05);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto x = [&](double v) { return kLeft + v / max_x * plot_w; };
  auto y = [&](double v) { return kTop + plot_h - std::min(v, max_y) / max_y * plot_h; };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"24\" font-size=\"15\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kLeft, Escape(axes.title));
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
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                        "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
                        "text-anchor=\"middle\">%s</text>\n",
                        kLeft, kTop, plot_w, plot_h, kLeft + plot_w / 2, kHeight - 12,
                        Escape(axes.x_label), kTop + plot_h / 2, kTop + plot_h / 2,
                        Escape(axes.y_label));
  if (axes.reference > 0) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" "
                          "stroke-dasharray=\"6 4\"/>\n<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          kLeft, y(axes.reference), kLeft + plot_w, y(axes.reference),
                          kLeft + plot_w + 6, y(axes.reference) + 4, Escape(axes.reference_label));
  }
  for (size_t s = 0; s < lines.size(); ++s) {
    const PlotLine& l = lines[s];
    const char* color = kColors[s % std::size(kColors)];
    std::string path;
    for (size_t i = 0; i < l.x.size(); ++i) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "" : " ", x(l.x[i]), y(l.y[i]));
    }
    absl::StrAppendFormat(&svg, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                          path, color);
    for (size_t i = 0; i < l.x.size(); ++i) {
      const bool capped = l.y[i] > max_y;
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" stroke=\"%s\">"
                            "<title>%s %s: %g, %g</title></circle>\n",
                            x(l.x[i]), y(l.y[i]), capped ? "white" : color, color, Escape(l.name),
                            Escape(i < l.labels.size() ? l.labels[i] : ""), l.x[i], l.y[i]);
    }
    const double ly = kTop + 10 + 20 * s;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          kLeft + plot_w + 15, ly, kLeft + plot_w + 40, ly, color,
                          kLeft + plot_w + 46, ly + 4, Escape(l.name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string LatencyThroughputSvg(const std::vector<PlotPoint>& points, const std::string& title) {
  std::vector<PlotLine> lines = {{"p50", {}, {}, {}}, {"p90", {}, {}, {}}, {"p99", {}, {}, {}}};
  for (const PlotPoint& p : points) {
    for (PlotLine& l : lines) {
      l.x.push_back(p.throughput);
      l.labels.push_back(p.label);
    }
    lines[0].y.push_back(p.p50_ms);
    lines[1].y.push_back(p.p90_ms);
    lines[2].y.push_back(p.p99_ms);
  }
  PlotAxes axes;
  axes.title = title;
  axes.x_label = "throughput (requests/s)";
  axes.y_label = "latency (ms)";
  return LinesSvg(lines, axes);
}

}  // namespace cnnserve::client
