// adaptive_report: turns bench/adaptive's per-configuration perf CSVs into a
// Markdown table and an SVG of p99 against offered rate, and checks issue 9's
// goals for the adaptive configurations against the fixed ones.
//
//   adaptive_report --title=T --slo_ms=S --capacity=C --svg=OUT.svg NAME=FILE.csv[,FILE.csv...]...
//
// A NAME starting with "slo" is an adaptive configuration, any other a fixed
// one. Several CSVs for a NAME are repeated sweeps: each cell of the table
// and plot is their median, field by field, and the goals are checked on
// the medians and on each sweep (the k-th files of every NAME, which ran
// interleaved, are compared with one another). A configuration "meets the SLO" at a rate when at least 99% of the
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
  std::vector<std::vector<Row>> sweeps;  // each by rate
  std::vector<Row> rows;                 // the median over sweeps, by rate
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Field-by-field medians of the sweeps, over the rates they all have.
std::vector<Row> MedianRows(const std::vector<std::vector<Row>>& sweeps) {
  size_t rates = sweeps[0].size();
  for (const auto& s : sweeps) rates = std::min(rates, s.size());
  std::vector<Row> out(rates);
  for (size_t r = 0; r < rates; ++r) {
    auto median = [&](auto field) {
      std::vector<double> v;
      for (const auto& s : sweeps) v.push_back(static_cast<double>(s[r].*field));
      return Median(v);
    };
    out[r] = {median(&Row::rate), median(&Row::p99_ms), median(&Row::req_per_s),
              median(&Row::within_slo_per_s), median(&Row::within_slo_fraction),
              static_cast<long>(median(&Row::errors))};
  }
  return out;
}

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

struct Outcome {
  int missed = 0;          // rates where a fixed configuration meets the SLO and it does not
  double highest = 0;      // its highest rate meeting the SLO
  double best_fixed = 0;   // the best fixed configuration's
  double goodput = -1;     // min within-SLO rate past capacity (-1: no such rate)
};

// Issue 9's goals for every configuration, on the rows `pick` selects.
template <typename Pick>
std::map<std::string, Outcome> Goals(const std::vector<Config>& configs, double capacity, Pick pick) {
  std::map<std::string, Outcome> out;
  double best_fixed = 0;
  for (const Config& c : configs) {
    Outcome& o = out[c.name];
    for (const Row& row : pick(c)) {
      if (Meets(row)) o.highest = std::max(o.highest, row.rate);
      if (row.rate > capacity) {
        o.goodput = o.goodput < 0 ? row.within_slo_per_s : std::min(o.goodput, row.within_slo_per_s);
      }
    }
    if (!c.adaptive) best_fixed = std::max(best_fixed, o.highest);
  }
  for (const Config& a : configs) {
    Outcome& o = out[a.name];
    o.best_fixed = best_fixed;
    const std::vector<Row>& rows = pick(a);
    for (size_t r = 0; r < rows.size(); ++r) {
      bool some_fixed = false;
      for (const Config& f : configs) {
        some_fixed |= !f.adaptive && r < pick(f).size() && Meets(pick(f)[r]);
      }
      if (some_fixed && !Meets(rows[r])) ++o.missed;
    }
  }
  return out;
}

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
      Config c{a.substr(0, eq), a.rfind("slo", 0) == 0, {}, {}};
      for (const std::string& path : std::vector<std::string>(absl::StrSplit(a.substr(eq + 1), ','))) {
        if (!ReadCsv(path, &c.sweeps.emplace_back())) {
          std::cerr << "cannot read a perf CSV with within_slo columns from " << path << "\n";
          return 2;
        }
      }
      if (!configs.empty() && c.sweeps.size() != configs[0].sweeps.size()) {
        std::cerr << c.name << " has " << c.sweeps.size() << " sweeps, " << configs[0].name
                  << " " << configs[0].sweeps.size() << "\n";
        return 2;
      }
      c.rows = MedianRows(c.sweeps);
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
  const size_t sweeps = configs[0].sweeps.size();
  if (sweeps > 1) std::cout << "Each cell is the median of " << sweeps << " interleaved sweeps.\n\n";
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

  // The goals, on the medians.
  const auto median = Goals(configs, capacity, [](const Config& c) -> const std::vector<Row>& { return c.rows; });
  std::cout << "\n| configuration | highest rate meeting the SLO | goodput past capacity (min over rates > capacity) |\n|---|---|---|\n";
  for (const Config& c : configs) {
    const Outcome& o = median.at(c.name);
    std::cout << absl::StrFormat("| %s | %.1f req/s | %s |\n", c.name, o.highest,
                                 o.goodput < 0 ? "-" : absl::StrFormat("%.1f req/s (%.0f%% of capacity)", o.goodput, 100 * o.goodput / capacity));
  }
  std::cout << "\n";
  for (const Config& a : configs) {
    if (!a.adaptive) continue;
    const Outcome& o = median.at(a.name);
    std::cout << absl::StrFormat(
        "- %s: %s at every rate where a fixed configuration meets the SLO (%d missed); highest rate "
        "within SLO %.1f vs best fixed %.1f (%s); goodput past capacity %.0f%% of capacity (%s, goal 90%%)\n",
        a.name, o.missed == 0 ? "meets it" : "does NOT meet it", o.missed, o.highest, o.best_fixed,
        o.highest >= o.best_fixed ? "met" : "NOT met", 100 * o.goodput / capacity,
        o.goodput >= 0.9 * capacity ? "met" : "NOT met");
  }
  if (sweeps > 1) {
    std::cout << "\nSweep by sweep (missed rates / highest within SLO vs best fixed / goodput past capacity):\n";
    std::vector<std::map<std::string, Outcome>> each;
    for (size_t k = 0; k < sweeps; ++k) {
      each.push_back(Goals(configs, capacity, [k](const Config& c) -> const std::vector<Row>& { return c.sweeps[k]; }));
    }
    for (const Config& a : configs) {
      if (!a.adaptive) continue;
      std::cout << "- " << a.name << ":";
      for (const auto& e : each) {
        const Outcome& o = e.at(a.name);
        std::cout << absl::StrFormat(" [%d / %.1f vs %.1f / %.0f%%]", o.missed, o.highest, o.best_fixed,
                                     100 * o.goodput / capacity);
      }
      std::cout << "\n";
    }
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
