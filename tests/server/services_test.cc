// The gRPC services over a real channel on a kernel-chosen port, on a
// scratch repository: images as KServe BYTES inputs (PNG and JPEG, raw and
// typed), cnnserve.v1.Classifier, the repository extension, deadlines and
// the message size limit, each with bad input that gets the right code
// while the server keeps answering.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "cnnserve/v1/classifier.grpc.pb.h"
#include "engine/image/image.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "turbojpeg.h"

namespace cnnserve::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Sample(int digit) {
  return ReadFile(fs::path(CNNSERVE_SOURCE_DIR) / "samples" / ("digit_" + std::to_string(digit) + ".png"));
}

// The sample's pixels, nearest-upscaled to the model's 32x32.
image::Image SamplePixels(int digit) {
  auto img = image::DecodeImage(Sample(digit), {.channels = 1});
  EXPECT_TRUE(img.ok()) << img.status();
  return image::ResizeNearest(*img, 32, 32);
}

// The upscaled sample encoded as a grayscale JPEG (quality 95).
std::string SampleAsJpeg(int digit) {
  image::Image img = SamplePixels(digit);
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, img.pixels.data(), 32, 0, 32, TJPF_GRAY, &jpeg, &size, TJSAMP_GRAY, 95, 0), 0);
  std::string out(reinterpret_cast<const char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

std::string Bytes(const std::vector<std::string>& files) {
  std::string raw;
  for (const std::string& f : files) {
    const uint32_t n = f.size();
    const char len[4] = {char(n & 255), char((n >> 8) & 255), char((n >> 16) & 255), char(n >> 24)};
    raw.append(len, 4);
    raw += f;
  }
  return raw;
}

class ServicesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One per process: ctest runs each test case as its own process, in parallel.
    root_ = new fs::path(fs::path(::testing::TempDir()) / ("services_repo_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    fs::copy(CNNSERVE_SOURCE_DIR "/models/digits_lenet5", *root_ / "digits_lenet5",
             fs::copy_options::recursive);
    fs::create_directories(*root_ / "slow");
    std::ofstream(*root_ / "slow" / "config.pbtxt")
        << "platform: \"zoo\"\nzoo: \"lenet5\"\n"
           "dynamic_batching { max_queue_delay_micros: 5000000  default_timeout_micros: 1000 }\n";
    Server::Options options;
    options.model_repository = root_->string();
    options.model_control_mode = "explicit";
    options.load_models = {"*"};
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.http_port = 0;
    options.max_message_bytes = 4 << 20;
    auto s = Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(*root_);
    delete root_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    kserve_ = inference::GRPCInferenceService::NewStub(channel);
    classifier_ = v1::Classifier::NewStub(channel);
  }

  // A BYTES ModelInfer for `files`, asking for the top class of each.
  static inference::ModelInferRequest ImageRequest(const std::vector<std::string>& files, bool raw) {
    inference::ModelInferRequest r;
    r.set_model_name("digits_lenet5");
    auto* t = r.add_inputs();
    t->set_name("input");
    t->set_datatype("BYTES");
    t->add_shape(files.size());
    if (raw) {
      r.add_raw_input_contents(Bytes(files));
    } else {
      for (const std::string& f : files) t->mutable_contents()->add_bytes_contents(f);
    }
    auto* out = r.add_outputs();
    out->set_name("logits");
    (*out->mutable_parameters())["classification"].set_int64_param(1);
    return r;
  }
  grpc::Status Infer(const inference::ModelInferRequest& r, inference::ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    return kserve_->ModelInfer(&ctx, r, resp);
  }
  grpc::Status Classify(const v1::ClassifyRequest& r, v1::ClassifyResponse* resp) {
    grpc::ClientContext ctx;
    return classifier_->Classify(&ctx, r, resp);
  }
  // The label of the top class of item i ("score:index:label").
  static std::string TopLabel(const inference::ModelInferResponse& resp, int i) {
    const std::string& s = resp.outputs(0).contents().bytes_contents(i);
    return s.substr(s.rfind(':') + 1);
  }
  void ExpectGoodRequestStillAnswered() {
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(ImageRequest({Sample(7)}, true), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(TopLabel(resp, 0), "7");
  }

  static fs::path* root_;
  static Server* server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve_;
  std::unique_ptr<v1::Classifier::Stub> classifier_;
};

fs::path* ServicesTest::root_ = nullptr;
Server* ServicesTest::server_ = nullptr;

TEST_F(ServicesTest, ServerMetadataListsTheExtensions) {
  grpc::ClientContext ctx;
  inference::ServerMetadataResponse resp;
  ASSERT_TRUE(kserve_->ServerMetadata(&ctx, {}, &resp).ok());
  EXPECT_THAT(resp.extensions(), ::testing::Contains("classification"));
  EXPECT_THAT(resp.extensions(), ::testing::Contains("model_repository"));
}

TEST_F(ServicesTest, ModelMetadataSaysTheInputTakesImages) {
  grpc::ClientContext ctx;
  inference::ModelMetadataRequest req;
  req.set_name("digits_lenet5");
  inference::ModelMetadataResponse resp;
  ASSERT_TRUE(kserve_->ModelMetadata(&ctx, req, &resp).ok());
  const auto& params = resp.inputs(0).parameters();
  ASSERT_TRUE(params.count("image_datatype"));
  EXPECT_EQ(params.at("image_datatype").string_param(), "BYTES");
  EXPECT_EQ(params.at("image_formats").string_param(), "JPEG,PNG");
  EXPECT_THAT(params.at("image_preprocessing").string_param(), HasSubstr("GRAY"));
}

TEST_F(ServicesTest, PngBytesInputsAreClassifiedRawAndTyped) {
  std::vector<std::string> files;
  for (int d = 0; d < 10; ++d) files.push_back(Sample(d));
  for (bool raw : {true, false}) {
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(ImageRequest(files, raw), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outputs(0).contents().bytes_contents_size(), 10);
    for (int d = 0; d < 10; ++d) EXPECT_EQ(TopLabel(resp, d), std::to_string(d)) << "raw=" << raw;
  }
}

TEST_F(ServicesTest, JpegAndPngGiveTheLogitsOfTheEquivalentFp32Tensor) {
  // The config says: gray, nearest resize 8x8 -> 32x32, scale 1/255.
  const image::Image pixels = SamplePixels(4);
  std::vector<float> tensor;
  image::AppendChwFloat(pixels, &tensor);
  inference::ModelInferRequest fp32;
  fp32.set_model_name("digits_lenet5");
  auto* t = fp32.add_inputs();
  t->set_name("input");
  t->set_datatype("FP32");
  for (int64_t d : {1, 1, 32, 32}) t->add_shape(d);
  fp32.add_raw_input_contents(std::string(reinterpret_cast<const char*>(tensor.data()), tensor.size() * 4));
  inference::ModelInferResponse want;
  ASSERT_TRUE(Infer(fp32, &want).ok());
  auto logits = [](const inference::ModelInferResponse& r) {
    std::vector<float> v(r.raw_output_contents(0).size() / 4);
    std::memcpy(v.data(), r.raw_output_contents(0).data(), v.size() * 4);
    return v;
  };
  inference::ModelInferRequest png = ImageRequest({Sample(4)}, true);
  png.clear_outputs();
  inference::ModelInferResponse got;
  ASSERT_TRUE(Infer(png, &got).ok());
  // The same pixels; the config's scale 0.00392157 is 1/255 to 7 digits.
  EXPECT_THAT(logits(got), ::testing::Pointwise(::testing::FloatNear(1e-3f), logits(want)));
  inference::ModelInferRequest jpeg = ImageRequest({SampleAsJpeg(4)}, false);
  jpeg.clear_outputs();
  ASSERT_TRUE(Infer(jpeg, &got).ok());
  const std::vector<float> a = logits(got), b = logits(want);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 0.05f * std::abs(b[i]) + 0.5f);
}

TEST_F(ServicesTest, JpegBytesInputsAreClassified) {
  std::vector<std::string> files;
  for (int d = 0; d < 10; ++d) files.push_back(SampleAsJpeg(d));
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(ImageRequest(files, true), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int d = 0; d < 10; ++d) EXPECT_EQ(TopLabel(resp, d), std::to_string(d));
}

TEST_F(ServicesTest, ABadImageIsInvalidArgumentAndNamesTheImage) {
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(ImageRequest({Sample(1), "GIF89a not an image"}, true), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("image 1"));
  EXPECT_THAT(s.error_message(), HasSubstr("neither a PNG nor a JPEG"));
  inference::ModelInferRequest truncated = ImageRequest({Sample(1)}, true);
  truncated.mutable_raw_input_contents(0)->resize(10);
  s = Infer(truncated, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("claims"));
  inference::ModelInferRequest miscounted = ImageRequest({Sample(1), Sample(2)}, false);
  miscounted.mutable_inputs(0)->set_shape(0, 3);
  s = Infer(miscounted, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("carries 2 images"));
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServicesTest, ClassifyReturnsTheTopClassesOfEachImage) {
  v1::ClassifyRequest req;
  req.set_model("digits_lenet5");
  req.set_top_k(3);
  for (int d = 0; d < 10; ++d) req.add_images(Sample(d));
  v1::ClassifyResponse resp;
  grpc::Status s = Classify(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.model(), "digits_lenet5");
  EXPECT_EQ(resp.version(), "1");
  ASSERT_EQ(resp.results_size(), 10);
  for (int d = 0; d < 10; ++d) {
    const auto& classes = resp.results(d).classes();
    ASSERT_EQ(classes.size(), 3);
    EXPECT_EQ(classes[0].index(), d);
    EXPECT_EQ(classes[0].label(), std::to_string(d));
    EXPECT_GE(classes[0].score(), classes[1].score());
    EXPECT_GE(classes[1].score(), classes[2].score());
    EXPECT_LE(classes[0].score() + classes[1].score() + classes[2].score(), 1.0001f);
    EXPECT_GT(classes[0].score(), 0.5f);
  }
}

TEST_F(ServicesTest, ClassifyRefusesBadRequestsWithTheRightCode) {
  v1::ClassifyResponse resp;
  v1::ClassifyRequest req;
  req.set_model("no_such_model");
  req.add_images(Sample(1));
  EXPECT_EQ(Classify(req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_model("digits_lenet5");
  req.clear_images();
  EXPECT_EQ(Classify(req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (int i = 0; i < 33; ++i) req.add_images(Sample(1));
  grpc::Status s = Classify(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("max_batch_size 32"));
  req.clear_images();
  req.add_images("\x89PNG\r\n\x1a\n truncated");
  s = Classify(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("image 0"));
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServicesTest, ListAndDescribeModels) {
  grpc::ClientContext ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(classifier_->ListModels(&ctx, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.models(0).name(), "digits_lenet5");
  EXPECT_EQ(list.models(0).state(), "READY");

  grpc::ClientContext ctx2;
  v1::DescribeModelRequest req;
  req.set_model("slow");
  v1::DescribeModelResponse d;
  ASSERT_TRUE(classifier_->DescribeModel(&ctx2, req, &d).ok());
  EXPECT_EQ(d.platform(), "zoo");
  EXPECT_THAT(d.description(), HasSubstr("random"));
  EXPECT_EQ(d.max_batch_size(), 32);
  EXPECT_EQ(d.dynamic_batching().max_queue_delay_micros(), 5000000);
  EXPECT_GT(d.layers_size(), 5);
  EXPECT_EQ(d.inputs(0).shape(1), 1);

  grpc::ClientContext ctx3;
  req.set_model("digits_lenet5");
  ASSERT_TRUE(classifier_->DescribeModel(&ctx3, req, &d).ok());
  EXPECT_EQ(d.labels_count(), 10);
  EXPECT_EQ(d.preprocessing().format(), v1::ImagePreprocessing::GRAY);
}

TEST_F(ServicesTest, ARequestWhoseDeadlinePassesInTheQueueIsDeadlineExceeded) {
  // "slow" waits up to 5 s to fill a batch; its default timeout is 1 ms.
  v1::ClassifyRequest req;
  req.set_model("slow");
  req.add_images(Sample(1));
  v1::ClassifyResponse resp;
  grpc::Status s = Classify(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("in the model's queue; it was not run"));
}

TEST_F(ServicesTest, AMessageOverTheLimitIsResourceExhausted) {
  inference::ModelInferRequest r = ImageRequest({std::string(5 << 20, 'x')}, true);
  inference::ModelInferResponse resp;
  EXPECT_EQ(Infer(r, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServicesTest, RepositoryIndexLoadAndUnloadOverGrpc) {
  auto index = [&] {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse resp;
    EXPECT_TRUE(kserve_->RepositoryIndex(&ctx, {}, &resp).ok());
    std::string all;
    for (const auto& m : resp.models()) all += m.name() + "/" + m.version() + "=" + m.state() + ";";
    return all;
  };
  EXPECT_EQ(index(), "digits_lenet5/1=READY;slow/1=READY;");
  {
    grpc::ClientContext ctx;
    inference::RepositoryModelUnloadRequest req;
    req.set_model_name("slow");
    inference::RepositoryModelUnloadResponse resp;
    ASSERT_TRUE(kserve_->RepositoryModelUnload(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(index(), "digits_lenet5/1=READY;slow/=UNAVAILABLE;");
  {
    grpc::ClientContext ctx;
    inference::ModelReadyRequest req;
    req.set_name("slow");
    inference::ModelReadyResponse resp;
    ASSERT_TRUE(kserve_->ModelReady(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.ready());
  }
  {
    grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name("slow");
    inference::RepositoryModelLoadResponse resp;
    ASSERT_TRUE(kserve_->RepositoryModelLoad(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(index(), "digits_lenet5/1=READY;slow/1=READY;");
  auto load = [&](const std::string& name, const std::string& repo, bool with_param) {
    grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(name);
    req.set_repository_name(repo);
    if (with_param) (*req.mutable_parameters())["config"].set_string_param("{}");
    inference::RepositoryModelLoadResponse resp;
    return kserve_->RepositoryModelLoad(&ctx, req, &resp);
  };
  EXPECT_EQ(load("../digits_lenet5", "", false).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(load("nope", "", false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(load("slow", "elsewhere", false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(load("slow", "", true).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectGoodRequestStillAnswered();
}

}  // namespace
}  // namespace cnnserve::server
