// ModelInfer request validation and response encoding, error paths first.
#include "server/tensor_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

using ::testing::HasSubstr;

const engine::ValueInfo kInput{"input", {-1, 1, 2, 2}};

inference::ModelInferRequest Request(std::vector<int64_t> shape, int raw_floats) {
  inference::ModelInferRequest r;
  auto* in = r.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : shape) in->add_shape(d);
  if (raw_floats >= 0) r.add_raw_input_contents(std::string(raw_floats * 4, '\0'));
  return r;
}

void ExpectInvalid(const inference::ModelInferRequest& r, const std::string& fragment) {
  auto s = DecodeInferInput(r, kInput).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(fragment));
}

TEST(TensorCodecTest, DecodesRawInput) {
  auto in = DecodeInferInput(Request({3, 1, 2, 2}, 12), kInput);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->items, 3);
  EXPECT_EQ(in->data.size(), 12u);
}

TEST(TensorCodecTest, DecodesTypedContents) {
  auto r = Request({1, 1, 2, 2}, -1);
  for (float v : {1.0f, 2.0f, 3.0f, 4.0f}) r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v);
  auto in = DecodeInferInput(r, kInput);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->data, ::testing::ElementsAre(1, 2, 3, 4));
}

TEST(TensorCodecTest, RejectsWrongDatatype) {
  auto r = Request({1, 1, 2, 2}, 4);
  r.mutable_inputs(0)->set_datatype("INT8");
  ExpectInvalid(r, "datatype 'INT8'; the model expects FP32");
}

TEST(TensorCodecTest, RejectsWrongShapeSayingWhatIsExpected) {
  ExpectInvalid(Request({1, 3, 2, 2}, 12), "has shape [1,3,2,2], model expects [N,1,2,2]");
  ExpectInvalid(Request({1, 4}, 4), "model expects [N,1,2,2]");
  ExpectInvalid(Request({0, 1, 2, 2}, 0), "N >= 1");
}

TEST(TensorCodecTest, RejectsRawSizeMismatch) {
  ExpectInvalid(Request({2, 1, 2, 2}, 4), "raw content is 16 bytes");
}

TEST(TensorCodecTest, RejectsBothRawAndTyped) {
  auto r = Request({1, 1, 2, 2}, 4);
  for (int i = 0; i < 4; ++i) r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0);
  ExpectInvalid(r, "both in raw_input_contents and in contents");
}

TEST(TensorCodecTest, RejectsUnknownOrMissingInput) {
  auto r = Request({1, 1, 2, 2}, 4);
  r.mutable_inputs(0)->set_name("image");
  ExpectInvalid(r, "unknown input 'image'");
  ExpectInvalid(inference::ModelInferRequest(), "the request has 0");
}

const std::vector<engine::ValueInfo> kOutputs = {{"logits", {-1, 3}}};
const std::vector<engine::Tensor> kValues = {{{2, 3}, {0.1f, 0.7f, 0.2f, 0.9f, 0.05f, 0.05f}}};

TEST(TensorCodecTest, EncodesAllOutputsAsRawFp32ByDefault) {
  inference::ModelInferResponse resp;
  ASSERT_TRUE(EncodeInferOutputs({}, kOutputs, kValues, {}, &resp).ok());
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
  EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(2, 3));
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0).size(), 24u);
}

TEST(TensorCodecTest, EncodesClassificationBestFirstWithLabels) {
  inference::ModelInferRequest req;
  auto* out = req.add_outputs();
  out->set_name("logits");
  (*out->mutable_parameters())["classification"].set_int64_param(2);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(EncodeInferOutputs(req, kOutputs, kValues, {"cat", "dog", "eel"}, &resp).ok());
  EXPECT_EQ(resp.outputs(0).datatype(), "BYTES");
  EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(2, 2));
  EXPECT_THAT(resp.outputs(0).contents().bytes_contents(),
              ::testing::ElementsAre("0.7:1:dog", "0.2:2:eel", "0.9:0:cat", "0.05:1:dog"));
  EXPECT_EQ(resp.raw_output_contents_size(), 0);
}

TEST(TensorCodecTest, RejectsNonPositiveClassificationAndUnknownOutputs) {
  inference::ModelInferRequest req;
  auto* out = req.add_outputs();
  out->set_name("logits");
  (*out->mutable_parameters())["classification"].set_int64_param(0);
  inference::ModelInferResponse resp;
  auto s = EncodeInferOutputs(req, kOutputs, kValues, {}, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("classification must be positive"));

  req.mutable_outputs(0)->set_name("probs");
  req.mutable_outputs(0)->clear_parameters();
  s = EncodeInferOutputs(req, kOutputs, kValues, {}, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown requested output 'probs'"));
}

}  // namespace
}  // namespace cnnserve::server
