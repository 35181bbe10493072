// The whole server over a real gRPC channel on a kernel-chosen port, serving
// the committed digits model: health, metadata, inference, and bad requests
// that get the right code while good ones keep being answered.
#include "server/server.h"

#include <filesystem>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace cnnserve::server {
namespace {

using ::testing::HasSubstr;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Server::Options options;
    options.model_repository = CNNSERVE_SOURCE_DIR "/models";
    // The default repository, but only the trained model: the zoo benchmark
    // models would cost every test process seconds and a GiB.
    options.model_control_mode = "explicit";
    options.load_models = {"digits_lenet5"};
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.http_port = 0;
    auto s = Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
  }
  static void TearDownTestSuite() { delete server_; }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  // A [n,1,32,32] request whose every item is the held-out example `row`.
  static inference::ModelInferRequest DigitRequest(int n, int* label) {
    std::ifstream in(CNNSERVE_SOURCE_DIR "/tests/data/digits_heldout.csv");
    std::string line;
    std::getline(in, line);
    std::vector<int> values;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',') && values.size() < 65;) values.push_back(std::stoi(f));
    *label = values[0];
    std::vector<float> item(32 * 32);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) item[y * 32 + x] = values[1 + (y / 4) * 8 + x / 4] / 255.0f;
    inference::ModelInferRequest r;
    r.set_model_name("digits_lenet5");
    r.set_id("req-7");
    auto* t = r.add_inputs();
    t->set_name("input");
    t->set_datatype("FP32");
    for (int64_t d : {int64_t{n}, int64_t{1}, int64_t{32}, int64_t{32}}) t->add_shape(d);
    std::string raw;
    for (int i = 0; i < n; ++i) raw.append(reinterpret_cast<const char*>(item.data()), item.size() * 4);
    r.add_raw_input_contents(raw);
    return r;
  }

  grpc::Status Infer(const inference::ModelInferRequest& r, inference::ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    return stub_->ModelInfer(&ctx, r, resp);
  }

  void ExpectGoodRequestStillAnswered() {
    int label = -1;
    inference::ModelInferResponse resp;
    auto req = DigitRequest(1, &label);
    auto* out = req.add_outputs();
    out->set_name("logits");
    (*out->mutable_parameters())["classification"].set_int64_param(1);
    grpc::Status s = Infer(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outputs(0).contents().bytes_contents_size(), 1);
    EXPECT_THAT(resp.outputs(0).contents().bytes_contents(0),
                ::testing::EndsWith(":" + std::to_string(label)));
  }

  static Server* server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

Server* ServerTest::server_ = nullptr;

TEST_F(ServerTest, IsLiveAndReady) {
  grpc::ClientContext c1, c2;
  inference::ServerLiveResponse live;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(live.live());
  EXPECT_TRUE(ready.ready());
}

TEST_F(ServerTest, DescribesTheModel) {
  grpc::ClientContext ctx;
  inference::ModelMetadataRequest req;
  req.set_name("digits_lenet5");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(stub_->ModelMetadata(&ctx, req, &meta).ok());
  EXPECT_THAT(meta.versions(), ::testing::ElementsAre("1"));
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_THAT(meta.inputs(0).shape(), ::testing::ElementsAre(-1, 1, 32, 32));
  EXPECT_THAT(meta.outputs(0).shape(), ::testing::ElementsAre(-1, 10));
}

TEST_F(ServerTest, ClassifiesABatchAndEchoesTheRequestId) {
  int label = -1;
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(DigitRequest(4, &label), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.id(), "req-7");
  EXPECT_EQ(resp.model_version(), "1");
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  ASSERT_EQ(resp.raw_output_contents(0).size(), 4u * 10 * 4);
  const float* logits = reinterpret_cast<const float*>(resp.raw_output_contents(0).data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(std::max_element(logits + i * 10, logits + i * 10 + 10) - (logits + i * 10), label);
  }
}

TEST_F(ServerTest, ServedAccuracyOnTheHeldOutSplitEqualsTheTrainingFigure) {
  std::ifstream acc(CNNSERVE_SOURCE_DIR "/tests/data/digits_accuracy.txt");
  int expected_correct = 0, total = 0;
  ASSERT_TRUE(acc >> expected_correct >> total);
  std::ifstream in(CNNSERVE_SOURCE_DIR "/tests/data/digits_heldout.csv");
  std::vector<int> labels;
  std::string raw;
  for (std::string line; std::getline(in, line);) {
    std::vector<int> v;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',') && v.size() < 65;) v.push_back(std::stoi(f));
    labels.push_back(v[0]);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const float p = v[1 + (y / 4) * 8 + x / 4] / 255.0f;
        raw.append(reinterpret_cast<const char*>(&p), 4);
      }
  }
  ASSERT_EQ(static_cast<int>(labels.size()), total);
  int correct = 0;
  constexpr int kPerRequest = 30;  // within max_batch_size
  for (int first = 0; first < total; first += kPerRequest) {
    inference::ModelInferRequest r;
    r.set_model_name("digits_lenet5");
    auto* t = r.add_inputs();
    t->set_name("input");
    t->set_datatype("FP32");
    for (int64_t d : {int64_t{kPerRequest}, int64_t{1}, int64_t{32}, int64_t{32}}) t->add_shape(d);
    r.add_raw_input_contents(raw.substr(first * 4096, kPerRequest * 4096));
    auto* out = r.add_outputs();
    out->set_name("logits");
    (*out->mutable_parameters())["classification"].set_int64_param(1);
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(r, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (int i = 0; i < kPerRequest; ++i) {
      correct += ::testing::Matches(::testing::EndsWith(":" + std::to_string(labels[first + i])))(
          resp.outputs(0).contents().bytes_contents(i));
    }
  }
  EXPECT_EQ(correct, expected_correct);
}

TEST_F(ServerTest, ManyConcurrentRequestsAreAllAnsweredCorrectly) {
  int label = -1;
  const auto req = DigitRequest(1, &label);
  constexpr int kRequests = 64;
  struct Call {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    grpc::Status status;
    absl::Notification done;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kRequests; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call* c = calls.back().get();
    stub_->async()->ModelInfer(&c->ctx, &req, &c->resp, [c](grpc::Status s) {
      c->status = s;
      c->done.Notify();
    });
  }
  for (auto& c : calls) {
    c->done.WaitForNotification();
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
    const float* logits = reinterpret_cast<const float*>(c->resp.raw_output_contents(0).data());
    EXPECT_EQ(std::max_element(logits, logits + 10) - logits, label);
  }
}

TEST_F(ServerTest, UnknownModelIsNotFound) {
  int label;
  auto req = DigitRequest(1, &label);
  req.set_model_name("resnet9000");
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown model 'resnet9000'"));
  req.set_model_name("digits_lenet5");
  req.set_model_version("3");
  s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServerTest, BadShapesAndSizesAreInvalidArgument) {
  int label;
  auto req = DigitRequest(1, &label);
  req.mutable_inputs(0)->set_shape(2, 28);
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("model expects [N,1,32,32]"));

  req = DigitRequest(1, &label);
  req.mutable_raw_input_contents(0)->resize(100);
  s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("raw content is 100 bytes"));
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServerTest, MoreItemsThanMaxBatchSizeIsInvalidArgument) {
  int label;
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(DigitRequest(33, &label), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("max_batch_size 32"));
  ExpectGoodRequestStillAnswered();
}

TEST_F(ServerTest, UnknownRequestedOutputIsInvalidArgument) {
  int label;
  auto req = DigitRequest(1, &label);
  req.add_outputs()->set_name("probabilities");
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("'logits'"));
}

TEST(ServerStartTest, MissingRepositoryIsAClearError) {
  Server::Options options;
  options.model_repository = "/nonexistent/models";
  options.grpc_port = 0;
  options.http_port = 0;
  auto s = Server::Start(options);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("/nonexistent/models"));
}

TEST(ServerStartTest, ABrokenModelIsNotReadyAndDoesNotStopTheOthers) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "repo_with_broken_model";
  fs::remove_all(root);
  fs::create_directories(root / "broken" / "1");
  std::ofstream(root / "broken" / "1" / "model.onnx") << "this is not onnx";
  fs::create_directories(root / "digits" / "1");
  fs::copy_file(CNNSERVE_SOURCE_DIR "/models/digits_lenet5/1/model.onnx",
                root / "digits" / "1" / "model.onnx");
  Server::Options options;
  options.model_repository = root.string();
  options.host = "127.0.0.1";
  options.grpc_port = 0;
  options.http_port = 0;
  auto server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext c1, c2, c3;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub->ServerReady(&c1, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ModelReadyRequest mr;
  mr.set_name("digits");
  inference::ModelReadyResponse mresp;
  ASSERT_TRUE(stub->ModelReady(&c2, mr, &mresp).ok());
  EXPECT_TRUE(mresp.ready());
  inference::ModelMetadataRequest meta;
  meta.set_name("broken");
  inference::ModelMetadataResponse meta_resp;
  grpc::Status s = stub->ModelMetadata(&c3, meta, &meta_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("not a valid ONNX model"));
}

}  // namespace
}  // namespace cnnserve::server
