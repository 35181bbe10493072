// The load tester's pure parts: nearest-rank percentiles against known
// distributions, merging windows, and the concurrency syntax.
#include "client/latency_stats.h"
#include "client/perf.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::client {
namespace {

using ::testing::ElementsAre;

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
