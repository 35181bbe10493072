// The load tester's pure parts: nearest-rank percentiles against known
// distributions, merging windows, the concurrency syntax, rate pacing
// (computed schedules, no clock), /metrics deltas and the SVG plot.
#include <cmath>

#include "client/latency_stats.h"
#include "client/pacer.h"
#include "client/perf.h"
#include "client/server_metrics.h"
#include "client/svg_plot.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::client {
namespace {

using ::testing::ElementsAre;

TEST(LatencyStatsTest, CountsTheSamplesWithinALimit) {
  LatencyStats s;
  for (double v : {5.0, 10.0, 10.0, 12.5, 40.0}) s.Add(v);
  EXPECT_EQ(s.CountAtMost(10), 3);
  EXPECT_EQ(s.CountAtMost(4.9), 0);
  EXPECT_EQ(s.CountAtMost(40), 5);
}

TEST(LatencyStatsTest, PercentilesOfOneToHundredAreTheirRanks) {
  LatencyStats s;
  for (int i = 100; i >= 1; --i) s.Add(i);  // any order
  EXPECT_EQ(s.Percentile(50), 50);
  EXPECT_EQ(s.Percentile(90), 90);
  EXPECT_EQ(s.Percentile(99), 99);
  EXPECT_EQ(s.Percentile(99.5), 100);
  EXPECT_EQ(s.Max(), 100);
  EXPECT_DOUBLE_EQ(s.Mean(), 50.5);
}

TEST(LatencyStatsTest, APercentileIsAlwaysASampleThatHappened) {
  LatencyStats s;
  s.Add(1);
  s.Add(1000);
  EXPECT_EQ(s.Percentile(50), 1);      // rank ceil(0.5 * 2) = 1
  EXPECT_EQ(s.Percentile(50.1), 1000);  // rank 2: no interpolated 500
  LatencyStats empty;
  EXPECT_EQ(empty.Percentile(99), 0);
}

TEST(LatencyStatsTest, MergedWindowsEqualOneWindowOfAllSamples) {
  LatencyStats a, b, all;
  for (int i = 0; i < 1000; ++i) {
    const double v = (i * 7919) % 1000;  // a permutation of 0..999
    (i % 3 ? a : b).Add(v);
    all.Add(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), 1000);
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) EXPECT_EQ(a.Percentile(p), all.Percentile(p)) << p;
  EXPECT_EQ(a.Percentile(99), 989);
}

TEST(ParseConcurrencyTest, AcceptsListsAndRanges) {
  EXPECT_THAT(*ParseConcurrency("1,2,4"), ElementsAre(1, 2, 4));
  EXPECT_THAT(*ParseConcurrency("1:64:x2"), ElementsAre(1, 2, 4, 8, 16, 32, 64));
  EXPECT_THAT(*ParseConcurrency("2:8:+3"), ElementsAre(2, 5, 8));
  for (const char* bad : {"", "0", "1,,2", "a", "1:8", "8:1:x2", "1:8:x1", "1:8:*2", "1:99999:x2"}) {
    EXPECT_EQ(ParseConcurrency(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cnnserve::client

namespace cnnserve::client {
namespace {

TEST(PacerTest, ConstantArrivalsAreExactlyOneOverTheRateApart) {
  const absl::Time start = absl::FromUnixSeconds(1000);
  Pacer pacer(250, /*poisson=*/false, start);
  for (int i = 0; i < 100000; ++i) {
    const absl::Time t = pacer.Next();
    ASSERT_LE(absl::AbsDuration(t - (start + absl::Milliseconds(4) * i)), absl::Nanoseconds(1)) << i;
  }
}

TEST(PacerTest, PoissonArrivalsHaveTheRateAndExponentialGaps) {
  const absl::Time start = absl::FromUnixSeconds(1000);
  Pacer pacer(500, /*poisson=*/true, start, /*seed=*/42);
  constexpr int kN = 200000;
  std::vector<double> gaps;
  absl::Time prev = pacer.Next();
  EXPECT_EQ(prev, start);
  for (int i = 0; i < kN; ++i) {
    const absl::Time t = pacer.Next();
    gaps.push_back(absl::ToDoubleSeconds(t - prev));
    prev = t;
  }
  double mean = 0;
  for (double g : gaps) mean += g;
  mean /= kN;
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  const double cv = std::sqrt(var / kN) / mean;
  EXPECT_NEAR(mean, 1.0 / 500, 0.01 / 500);  // rate within 1%
  EXPECT_NEAR(cv, 1.0, 0.02);                 // exponential: sd equals the mean
  // The same seed gives the same schedule.
  Pacer again(500, true, start, 42);
  again.Next();
  EXPECT_EQ(again.Next(), start + absl::Seconds(gaps[0]) + absl::ZeroDuration());
}

TEST(ServerMetricsTest, SumsTheModelsSeriesAndTakesDeltas) {
  const std::string before = R"(# HELP cnnserve_requests_total x
cnnserve_requests_total{code="OK",model="m",version="1"} 10
cnnserve_requests_total{code="INVALID_ARGUMENT",model="m",version="1"} 2
cnnserve_requests_total{code="OK",model="other",version="1"} 99
cnnserve_queue_duration_seconds_sum{model="m",version="1"} 0.5
cnnserve_queue_duration_seconds_count{model="m",version="1"} 10
cnnserve_compute_duration_seconds_sum{model="m",version="1"} 1
cnnserve_compute_duration_seconds_count{model="m",version="1"} 4
cnnserve_batch_size_sum{model="m",version="1"} 10
)";
  const std::string after = R"(cnnserve_requests_total{code="OK",model="m",version="1"} 30
cnnserve_requests_total{code="INVALID_ARGUMENT",model="m",version="1"} 2
cnnserve_queue_duration_seconds_sum{model="m",version="1"} 1.5
cnnserve_queue_duration_seconds_count{model="m",version="1"} 30
cnnserve_compute_duration_seconds_sum{model="m",version="1"} 2
cnnserve_compute_duration_seconds_count{model="m",version="1"} 9
cnnserve_batch_size_sum{model="m",version="1"} 30
)";
  const ServerCounters a = ParseServerCounters(before, "m");
  EXPECT_EQ(a.requests, 12);
  const ServerDelta d = Delta(a, ParseServerCounters(after, "m"));
  EXPECT_EQ(d.requests, 20);
  EXPECT_EQ(d.batches, 5);
  EXPECT_DOUBLE_EQ(d.mean_queue_ms, 50);    // 1 s over 20 requests
  EXPECT_DOUBLE_EQ(d.mean_compute_ms, 200);  // 1 s over 5 batches
  EXPECT_DOUBLE_EQ(d.mean_batch_size, 4);
}

TEST(SvgPlotTest, DrawsEachPercentileThroughEveryStep) {
  std::vector<PlotPoint> points = {{100, 1, 2, 3, "c=1"}, {400, 2, 4, 9, "c=4"}, {500, 8, 20, 40, "c=16"}};
  const std::string svg = LatencyThroughputSvg(points, "m <test> & co");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_THAT(svg, ::testing::HasSubstr("m &lt;test&gt; &amp; co"));
  size_t polylines = 0, circles = 0;
  for (size_t p = 0; (p = svg.find("<polyline", p)) != std::string::npos; ++p) ++polylines;
  for (size_t p = 0; (p = svg.find("<circle", p)) != std::string::npos; ++p) ++circles;
  EXPECT_EQ(polylines, 3u);
  EXPECT_EQ(circles, 9u);
  EXPECT_THAT(svg, ::testing::EndsWith("</svg>\n"));
}

}  // namespace
}  // namespace cnnserve::client
