// adaptive_report: turns bench/adaptive's per-configuration perf CSVs into a
// Markdown table and an SVG of p99 against offered rate, and checks issue 9's
// goals for the adaptive configurations against the fixed ones.
//
//   adaptive_report --title=T --slo_ms=S --capacity=C --svg=OUT.svg NAME=FILE.csv...
//
// A NAME starting with "slo" is an adaptive configuration, any other a fixed
// one. A configuration "meets the SLO" at a rate when at least 99% of the
// requests sent in the measured window were answered OK within it (a shed
// request counts as a miss). Exit status 0 either way; the goals' outcome is
// printed.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/svg_plot.h"

namespace {

struct Row {
  double rate = 0, p99_ms = 0, req_per_s = 0, within_slo_per_s = 0, within_slo_fraction = 0;
  long errors = 0;
};

struct Config {
  std::string name;
  bool adaptive = false;
  std::vector<Row> rows;  // by rate
};

bool ReadCsv(const std::string& path, std::vector<Row>* rows) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  std::vector<std::string> header = absl::StrSplit(line, ',');
  auto column = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  const size_t rate = column("rate"), p99 = column("p99_ms"), rps = column("requests_per_s"),
               good = column("within_slo_per_s"), frac = column("within_slo_fraction"),
               errors = column("errors");
  if (frac >= header.size()) return false;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() != header.size()) continue;
    rows->push_back({std::stod(f[rate]), std::stod(f[p99]), std::stod(f[rps]), std::stod(f[good]),
                     std::stod(f[frac]), std::stol(f[errors])});
  }
  return !rows->empty();
}

bool Meets(const Row& r) { return r.within_slo_fraction >= 0.99; }

}  // namespace

int main(int argc, char** argv) {
  std::string title = "p99 against offered rate", svg_path;
  double slo_ms = 0, capacity = 0;
  std::vector<Config> configs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& flag) { return a.substr(flag.size()); };
    if (a.rfind("--title=", 0) == 0) {
      title = value("--title=");
    } else if (a.rfind("--slo_ms=", 0) == 0) {
      slo_ms = std::stod(value("--slo_ms="));
    } else if (a.rfind("--capacity=", 0) == 0) {
      capacity = std::stod(value("--capacity="));
    } else if (a.rfind("--svg=", 0) == 0) {
      svg_path = value("--svg=");
    } else if (const size_t eq = a.find('='); eq != std::string::npos && a[0] != '-') {
      Config c{a.substr(0, eq), a.rfind("slo", 0) == 0, {}};
      if (!ReadCsv(a.substr(eq + 1), &c.rows)) {
        std::cerr << "cannot read a perf CSV with within_slo columns from " << a.substr(eq + 1) << "\n";
        return 2;
      }
      configs.push_back(std::move(c));
    } else {
      std::cerr << "usage: adaptive_report --title=T --slo_ms=S --capacity=C --svg=OUT NAME=FILE.csv...\n";
      return 2;
    }
  }
  if (configs.empty() || !(slo_ms > 0) || !(capacity > 0)) {
    std::cerr << "need --slo_ms, --capacity and at least one NAME=FILE.csv\n";
    return 2;
  }

  // The table: one row per offered rate, p99 and share within the SLO per configuration.
  std::cout << "| offered req/s |";
  for (const Config& c : configs) std::cout << " " << c.name << " |";
  std::cout << "\n|---|";
  for (size_t i = 0; i < configs.size(); ++i) std::cout << "---|";
  std::cout << "\n";
  for (size_t r = 0; r < configs[0].rows.size(); ++r) {
    std::cout << absl::StrFormat("| %.1f (%.2fx) |", configs[0].rows[r].rate,
                                 configs[0].rows[r].rate / capacity);
    for (const Config& c : configs) {
      if (r >= c.rows.size()) {
        std::cout << " - |";
        continue;
      }
      const Row& row = c.rows[r];
      std::cout << absl::StrFormat(" %s%.0f ms, %.1f%% in SLO, %.1f good/s |", Meets(row) ? "**" : "",
                                   row.p99_ms, 100 * row.within_slo_fraction, row.within_slo_per_s);
    }
    std::cout << "\n";
  }

  // The goals.
  std::cout << "\n| configuration | highest rate meeting the SLO | goodput past capacity (min over rates > capacity) |\n|---|---|---|\n";
  std::map<std::string, double> highest, goodput;
  for (const Config& c : configs) {
    double best = 0, worst_good = -1;
    for (const Row& row : c.rows) {
      if (Meets(row)) best = std::max(best, row.rate);
      if (row.rate > capacity) {
        worst_good = worst_good < 0 ? row.within_slo_per_s : std::min(worst_good, row.within_slo_per_s);
      }
    }
    highest[c.name] = best;
    goodput[c.name] = worst_good;
    std::cout << absl::StrFormat("| %s | %.1f req/s | %s |\n", c.name, best,
                                 worst_good < 0 ? "-" : absl::StrFormat("%.1f req/s (%.0f%% of capacity)", worst_good, 100 * worst_good / capacity));
  }
  double best_fixed = 0;
  for (const Config& c : configs) {
    if (!c.adaptive) best_fixed = std::max(best_fixed, highest[c.name]);
  }
  std::cout << "\n";
  for (const Config& a : configs) {
    if (!a.adaptive) continue;
    int missed = 0;
    for (size_t r = 0; r < a.rows.size(); ++r) {
      bool some_fixed = false;
      for (const Config& f : configs) some_fixed |= !f.adaptive && r < f.rows.size() && Meets(f.rows[r]);
      if (some_fixed && !Meets(a.rows[r])) ++missed;
    }
    std::cout << absl::StrFormat(
        "- %s: %s at every rate where a fixed configuration meets the SLO (%d missed); highest rate "
        "within SLO %.1f vs best fixed %.1f (%s); goodput past capacity %.0f%% of capacity (%s, goal 90%%)\n",
        a.name, missed == 0 ? "meets it" : "does NOT meet it", missed, highest[a.name], best_fixed,
        highest[a.name] >= best_fixed ? "met" : "NOT met", 100 * goodput[a.name] / capacity,
        goodput[a.name] >= 0.9 * capacity ? "met" : "NOT met");
  }

  if (!svg_path.empty()) {
    std::vector<cnnserve::client::PlotLine> lines;
    for (const Config& c : configs) {
      cnnserve::client::PlotLine l{c.name, {}, {}, {}};
      for (const Row& row : c.rows) {
        l.x.push_back(row.rate);
        l.y.push_back(row.p99_ms);
        l.labels.push_back(absl::StrFormat("%.1f%% within SLO", 100 * row.within_slo_fraction));
      }
      lines.push_back(std::move(l));
    }
    cnnserve::client::PlotAxes axes;
    axes.title = title;
    axes.x_label = "offered rate (requests/s)";
    axes.y_label = "p99 of answered requests (ms)";
    axes.y_cap = 4 * slo_ms;
    axes.reference = slo_ms;
    axes.reference_label = "SLO";
    std::ofstream(svg_path) << cnnserve::client::LinesSvg(lines, axes);
  }
  return 0;
}
