// config.pbtxt: the issue's example parses with every field, defaults are
// filled in, and each kind of mistake is refused naming file, line and why.
#include "server/model_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<v1::ModelConfig> Parse(const std::string& text, const std::string& name = "m") {
  return ParseModelConfig(text, "repo/m/config.pbtxt", name, ConfigDefaults());
}

std::string ErrorOf(const std::string& text) {
  auto c = Parse(text);
  EXPECT_FALSE(c.ok()) << "accepted:\n" << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(ModelConfigTest, ParsesTheDocumentedExample) {
  auto c = Parse(R"(
platform: "zoo"            # or "onnx"
zoo: "resnet50"
max_batch_size: 32
input { format: RGB  resize_shorter: 256  center_crop: 224  mean: [0.485, 0.456, 0.406]  std: [0.229, 0.224, 0.225]  scale: 0.00392157 }
dynamic_batching { max_queue_delay_micros: 0  preferred_batch_size: [8, 16]  max_queue_size: 256  default_timeout_micros: 0 }
instance_group { count: 1  threads: 2 }
version_policy { latest { num_versions: 1 } }
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->platform(), "zoo");
  EXPECT_EQ(c->zoo(), "resnet50");
  EXPECT_EQ(c->input().center_crop(), 224);
  EXPECT_THAT(c->dynamic_batching().preferred_batch_size(), ::testing::ElementsAre(8, 16));
  EXPECT_EQ(c->instance_group(0).threads(), 2);
  EXPECT_EQ(c->warmup().batch_size_size(), 1);
}

TEST(ModelConfigTest, AnEmptyConfigGetsTheDefaults) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->platform(), "onnx");
  EXPECT_EQ(c->max_batch_size(), 32);
  EXPECT_EQ(c->dynamic_batching().max_queue_size(), 1024);
  EXPECT_FLOAT_EQ(c->input().scale(), 1.0f / 255.0f);
  ASSERT_EQ(c->instance_group_size(), 1);
  EXPECT_EQ(c->instance_group(0).count(), 1);
  EXPECT_EQ(c->instance_group(0).threads(), 0);
  EXPECT_EQ(c->version_policy().latest().num_versions(), 1u);
  EXPECT_THAT(c->warmup().batch_size(), ::testing::ElementsAre(1));
}

TEST(ModelConfigTest, ASyntaxErrorNamesFileLineAndColumn) {
  const std::string e = ErrorOf("max_batch_size: 8\nplatform: onnx\n");
  EXPECT_THAT(e, HasSubstr("repo/m/config.pbtxt:2:"));
  EXPECT_THAT(e, HasSubstr("cnnserve.v1.ModelConfig"));
}

TEST(ModelConfigTest, AnUnknownFieldIsNamed) {
  const std::string e = ErrorOf("max_batch_size: 8\n\nmax_batch: 4\n");
  EXPECT_THAT(e, HasSubstr("config.pbtxt:3:"));
  EXPECT_THAT(e, HasSubstr("max_batch"));
}

TEST(ModelConfigTest, BadValuesAreRefusedWithTheirLine) {
  struct Case {
    std::string text, line, says;
  } cases[] = {
      {"platform: \"tensorflow\"", ":1:", "is not one of"},
      {"\nplatform: \"zoo\"\nzoo: \"resnet51\"", ":3:", "resnet50"},
      {"platform: \"zoo\"", ":1:", "needs a zoo name"},
      {"zoo: \"resnet18\"\nplatform: \"onnx\"", ":1:", "only for platform"},
      {"max_batch_size: -1", ":1:", "expected 1 to 4096"},
      {"max_batch_size: 8\ndynamic_batching {\n  preferred_batch_size: [4, 16]\n}", ":3:",
       "preferred_batch_size[1]: is 16; expected 1 to max_batch_size 8"},
      {"dynamic_batching { max_queue_delay_micros: -5 }", ":1:", "expected 0 to"},
      {"dynamic_batching {\n latency_slo_micros: -1\n}", ":2:", "expected 0 (off) to"},
      {"dynamic_batching { latency_slo_micros: 50000 max_queue_delay_micros: 100 }", ":1:",
       "set one or the other"},
      {"input {\n  mean: [0.1, 0.2]\n}", ":2:", "one per channel"},
      {"input { std: [1, 0, 1] }", ":1:", "must be positive"},
      {"input {\n resize_shorter: 200\n center_crop: 224\n}", ":3:", "larger than resize_shorter"},
      {"instance_group { count: 65 }", ":1:", "at most 64"},
      {"version_policy { latest { num_versions: 0 } }", ":1:", "at least 1"},
      {"version_policy { specific { } }", ":1:", "lists no versions"},
      {"warmup { batch_size: [1, 64] }", ":1:", "batch_size[1]: is 64"},
      {"name: \"other\"", ":1:", "must match"},
  };
  for (const Case& c : cases) {
    const std::string e = ErrorOf(c.text);
    EXPECT_THAT(e, HasSubstr("repo/m/config.pbtxt" + c.line)) << c.text;
    EXPECT_THAT(e, HasSubstr(c.says)) << c.text;
  }
}

}  // namespace
}  // namespace cnnserve::server
