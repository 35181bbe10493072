// The logger's level filter and its flag parsing.
#include "server/log.h"

#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

TEST(LogTest, AcceptsTheFourLevelsAndRefusesOthers) {
  for (const char* level : {"debug", "info", "warning", "error"}) {
    EXPECT_TRUE(SetLogLevel(level).ok()) << level;
  }
  absl::Status s = SetLogLevel("verbose");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("debug, info, warning or error"), std::string::npos) << s;
  EXPECT_TRUE(SetLogLevel("info").ok());
}

TEST(LogTest, WritesLogfmtWithQuotedValues) {
  ::testing::internal::CaptureStderr();
  Log(Severity::kInfo, "model ready", {{"model", "a b"}, {"version", "1"}});
  Log(Severity::kDebug, "hidden at info");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find(R"(level=info msg="model ready" model="a b" version=1)"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("hidden"), std::string::npos);
}

}  // namespace
}  // namespace cnnserve::server
