// The client's pure parts: classification strings to probabilities, paths.
#include "client/classify.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::client {
namespace {

TEST(TopClassesTest, TurnsLogitsIntoSoftmaxProbabilitiesBestFirst) {
  auto top = TopClasses({"2:0:cat", "0:1:dog", "1:2:eel"}, 2);
  ASSERT_TRUE(top.ok()) << top.status();
  ASSERT_EQ(top->size(), 2u);
  EXPECT_EQ((*top)[0].label, "cat");
  EXPECT_EQ((*top)[1].index, 2);
  const float z = std::exp(2.0f) + std::exp(0.0f) + std::exp(1.0f);
  EXPECT_NEAR((*top)[0].score, std::exp(2.0f) / z, 1e-6);
}

TEST(TopClassesTest, KeepsScoresThatAreAlreadyADistribution) {
  auto top = TopClasses({"0.75:3", "0.25:4"}, 5);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 2u);
  EXPECT_FLOAT_EQ((*top)[0].score, 0.75f);
  EXPECT_EQ((*top)[0].label, "");
}

TEST(TopClassesTest, LabelsMayContainColons) {
  auto top = TopClasses({"1:0:ns:label"}, 1);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ((*top)[0].label, "ns:label");
}

TEST(TopClassesTest, RejectsMalformedEntries) {
  EXPECT_EQ(TopClasses({"abc"}, 1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TopClasses({"x:1"}, 1).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ExpandImagePathsTest, ExpandsDirectoriesSortedAndRejectsMissingPaths) {
  auto files = ExpandImagePaths({CNNSERVE_SOURCE_DIR "/samples"});
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 10u);
  EXPECT_THAT(files->front(), ::testing::EndsWith("digit_0.png"));
  EXPECT_EQ(ExpandImagePaths({"/no/such/file.png"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ExpandImagePaths({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cnnserve::client
