#include "server/drain_gate.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

TEST(DrainGateTest, OpenGateRefusesNothing) {
  DrainGate gate;
  EXPECT_FALSE(gate.closed());
  EXPECT_FALSE(gate.Refuse());
  gate.Close();
  EXPECT_TRUE(gate.closed());
  EXPECT_TRUE(gate.Refuse());
}

TEST(DrainGateTest, QuietComesOneQuietPeriodAfterTheLastRefusal) {
  DrainGate gate;
  gate.Close();
  absl::SleepFor(absl::Milliseconds(60));
  const absl::Time refused = absl::Now();
  ASSERT_TRUE(gate.Refuse());
  EXPECT_TRUE(gate.AwaitQuiet(absl::Milliseconds(100), absl::Now() + absl::Seconds(10)));
  EXPECT_GE(absl::Now() - refused, absl::Milliseconds(100));
}

TEST(DrainGateTest, CallsThatNeverStopEndTheWaitAtTheDeadline) {
  DrainGate gate;
  gate.Close();
  std::atomic<bool> stop{false};
  std::thread caller([&] {
    while (!stop) {
      gate.Refuse();
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  const absl::Time start = absl::Now();
  EXPECT_FALSE(gate.AwaitQuiet(absl::Milliseconds(100), start + absl::Milliseconds(300)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  stop = true;
  caller.join();
}

}  // namespace
}  // namespace cnnserve::server
