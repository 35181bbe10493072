// cnnserve-bench: engine throughput and latency over a grid of batch sizes
// and thread counts, with GFLOP/s, the share of measured peak, and RSS.
//   cnnserve-bench --model=M[,M...] --batch=1,8,32 --threads=1,2 [--streams=1]
//                  [--seconds=S] [--json=FILE]
// --streams=K runs K execution contexts of --threads threads each on one
// shared model at once (throughput mode); latency is per batch, throughput
// counts all streams. GFLOP/s counts a direct convolution's FLOPs (2 per
// MAC); layers run as Winograd do fewer, so %peak can pass 100%.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/cost.h"
#include "engine/model.h"
#include "engine/zoo.h"
#include "tools/peak_flops.h"

ABSL_FLAG(std::string, model, "zoo:resnet18", "comma-separated .onnx files or zoo:NAMEs");
ABSL_FLAG(std::string, batch, "1,8,32", "batch sizes");
ABSL_FLAG(std::string, threads, "1,2", "OpenMP threads per stream");
ABSL_FLAG(int, streams, 1, "concurrent execution contexts on one model");
ABSL_FLAG(double, seconds, 3.0, "measuring time per row, after warm-up");
ABSL_FLAG(std::string, json, "", "also write the rows to this JSON file");

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> ParseList(const std::string& s) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int64_t v;
    if (absl::SimpleAtoi(part, &v) && v > 0) out.push_back(v);
  }
  return out;
}

int64_t ProcStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  }
  return 0;
}

struct Row {
  std::string model;
  int64_t batch, threads, streams;
  double images_per_sec, ms_per_batch, gflops, peak_fraction;
  int64_t rss_bytes;       // resident now, after the row (model, plans, arenas)
  int64_t peak_rss_bytes;  // the process's high-water mark, load included
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cnnserve-bench --model=M --batch=1,8,32 --threads=1,2");
  absl::ParseCommandLine(argc, argv);
  const int streams = std::max(1, absl::GetFlag(FLAGS_streams));
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const cnnserve::tools::PeakFlops peak_flops = cnnserve::tools::MeasurePeakFlops(0.5);
  const double peak_per_core = peak_flops.gflops_per_core;
  std::printf("measured peak: %.1f GFLOP/s per core (%s FMA loop); GFLOP/s below counts direct "
              "convolution FLOPs, which Winograd layers undercut\n",
              peak_per_core, peak_flops.isa);
  std::printf("%-22s %5s %7s %7s %12s %12s %9s %7s %9s %9s\n", "model", "batch", "threads",
              "streams", "images/s", "ms/batch", "GFLOP/s", "%peak", "RSS MB", "peak MB");
  std::vector<Row> rows;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_model), ',', absl::SkipEmpty())) {
    auto model = cnnserve::engine::Model::Load(std::string(name));
    if (!model.ok()) {
      std::cerr << "error: " << model.status().message() << "\n";
      return 1;
    }
    const auto& m = **model;
    const int64_t per_item = cnnserve::engine::ItemElements(m.input().shape);
    for (int64_t batch : ParseList(absl::GetFlag(FLAGS_batch))) {
      auto cost = cnnserve::engine::GraphCost(m.graph(), batch);
      int64_t macs = 0;
      for (const auto& l : *cost) macs += l.macs;
      const std::vector<float> input = cnnserve::engine::DeterministicInput(batch * per_item);
      for (int64_t threads : ParseList(absl::GetFlag(FLAGS_threads))) {
        std::vector<std::vector<double>> latencies(streams);
        std::atomic<int64_t> images{0};
        std::vector<std::thread> workers;
        Clock::time_point start, stop;
        std::atomic<int> warmed{0};
        for (int s = 0; s < streams; ++s) {
          workers.emplace_back([&, s] {
            auto ctx = m.CreateContext(static_cast<int>(threads));
            std::vector<cnnserve::engine::Tensor> out;
            for (int i = 0; i < 3; ++i) (void)m.Run(*ctx, batch, input, &out);  // warm-up
            ++warmed;
            while (warmed.load() < streams) std::this_thread::yield();
            const auto end = Clock::now() + std::chrono::duration<double>(seconds);
            while (Clock::now() < end || latencies[s].size() < 3) {
              const auto t0 = Clock::now();
              if (!m.Run(*ctx, batch, input, &out).ok()) return;
              latencies[s].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
              images += batch;
            }
          });
        }
        while (warmed.load() < streams) std::this_thread::yield();
        start = Clock::now();
        for (auto& w : workers) w.join();
        stop = Clock::now();
        std::vector<double> all;
        for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
        if (all.empty()) {
          std::cerr << "error: runs failed for " << name << "\n";
          return 1;
        }
        std::nth_element(all.begin(), all.begin() + all.size() / 2, all.end());
        const double median_ms = all[all.size() / 2];
        // Throughput from the median batch time of each stream, all streams together.
        const double ips = batch * 1000.0 / median_ms * streams;
        const double gflops = 2.0 * macs * streams / (median_ms / 1000.0) / 1e9;
        const double peak = peak_per_core * threads * streams;
        Row row{std::string(name), batch, threads, streams, ips, median_ms, gflops,
                peak > 0 ? gflops / peak : 0, ProcStatusKb("VmRSS:") * 1024,
                ProcStatusKb("VmHWM:") * 1024};
        std::printf("%-22s %5lld %7lld %7d %12.1f %12.3f %9.1f %6.1f%% %9.1f %9.1f\n", row.model.c_str(),
                    static_cast<long long>(batch), static_cast<long long>(threads), streams,
                    row.images_per_sec, row.ms_per_batch, row.gflops, 100 * row.peak_fraction,
                    row.rss_bytes / 1e6, row.peak_rss_bytes / 1e6);
        std::fflush(stdout);
        rows.push_back(row);
        (void)start;
        (void)stop;
      }
    }
  }
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::ofstream out(absl::GetFlag(FLAGS_json));
    out << "[\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      out << "  {\"model\": \"" << r.model << "\", \"batch\": " << r.batch << ", \"threads\": "
          << r.threads << ", \"streams\": " << r.streams << ", \"images_per_sec\": "
          << r.images_per_sec << ", \"ms_per_batch\": " << r.ms_per_batch << ", \"gflops\": "
          << r.gflops << ", \"peak_fraction\": " << r.peak_fraction << ", \"rss_bytes\": "
          << r.rss_bytes << ", \"peak_rss_bytes\": " << r.peak_rss_bytes << "}"
          << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    out << "]\n";
  }
  return 0;
}
