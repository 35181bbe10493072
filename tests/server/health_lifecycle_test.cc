// Health over gRPC and HTTP follows a model through its life: not loaded,
// loaded and ready, a failed reload (the old version keeps serving),
// unloaded, and the server draining while a request is still in flight.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "absl/synchronization/notification.h"
#include "cnnserve/v1/classifier.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/server.h"
#include "tests/server/http_get.h"

namespace cnnserve::server {
namespace {

namespace fs = std::filesystem;
using Health = grpc::health::v1::HealthCheckResponse;
using ::cnnserve::testing::HttpGet;

class HealthLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("health_repo_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "digits" / "1");
    fs::copy_file(CNNSERVE_SOURCE_DIR "/models/digits_lenet5/1/model.onnx",
                  root_ / "digits" / "1" / "model.onnx");
    fs::create_directories(root_ / "slow");
    // A batch waits up to 2 s to fill: a request stays in flight that long.
    std::ofstream(root_ / "slow" / "config.pbtxt")
        << "platform: \"zoo\"\nzoo: \"lenet5\"\ndynamic_batching { max_queue_delay_micros: 2000000 }\n";
    Server::Options options;
    options.model_repository = root_.string();
    options.model_control_mode = "explicit";
    options.load_models = {"slow"};
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.http_port = 0;
    auto s = Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    kserve_ = inference::GRPCInferenceService::NewStub(channel_);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(root_);
  }

  int Http(const std::string& path) { return HttpGet(server_->http_port(), path).status; }
  // The gRPC health status of `service`, or -1 - the gRPC error code.
  int GrpcHealth(const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    return s.ok() ? resp.status() : -1 - s.error_code();
  }
  grpc::Status Load(const std::string& model) {
    grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(model);
    inference::RepositoryModelLoadResponse resp;
    return kserve_->RepositoryModelLoad(&ctx, req, &resp);
  }
  grpc::Status Unload(const std::string& model) {
    grpc::ClientContext ctx;
    inference::RepositoryModelUnloadRequest req;
    req.set_model_name(model);
    inference::RepositoryModelUnloadResponse resp;
    return kserve_->RepositoryModelUnload(&ctx, req, &resp);
  }

  fs::path root_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve_;
};

TEST_F(HealthLifecycleTest, FollowsAModelThroughLoadFailedReloadUnloadAndDrain) {
  // Not loaded: unknown to the server.
  EXPECT_EQ(Http("/v2/health/ready"), 200);  // every model asked for is ready
  EXPECT_EQ(Http("/v2/models/digits/ready"), 404);
  EXPECT_EQ(GrpcHealth("digits"), -1 - grpc::StatusCode::NOT_FOUND);

  // Loaded.
  ASSERT_TRUE(Load("digits").ok());
  EXPECT_EQ(Http("/v2/models/digits/ready"), 200);
  EXPECT_EQ(Http("/v2/models/digits/versions/1/ready"), 200);
  EXPECT_EQ(GrpcHealth("digits"), Health::SERVING);
  EXPECT_EQ(GrpcHealth(""), Health::SERVING);

  // A failed reload: the file on disk breaks; the loaded version keeps serving.
  std::ofstream(root_ / "digits" / "1" / "model.onnx", std::ios::trunc) << "broken";
  grpc::Status reload = Load("digits");
  EXPECT_FALSE(reload.ok());
  EXPECT_THAT(reload.error_message(), ::testing::HasSubstr("keeps serving"));
  EXPECT_EQ(Http("/v2/models/digits/ready"), 200);
  EXPECT_EQ(GrpcHealth("digits"), Health::SERVING);

  // Unloaded.
  ASSERT_TRUE(Unload("digits").ok());
  EXPECT_EQ(Http("/v2/models/digits/ready"), 503);
  EXPECT_EQ(GrpcHealth("digits"), Health::NOT_SERVING);
  EXPECT_EQ(Http("/v2/health/ready"), 200);  // unloading on purpose is not a failure

  // Draining: a request waits in "slow"'s 2 s batch window while the
  // server shuts down; readiness turns false at once, and the request is
  // still answered.
  auto classifier = v1::Classifier::NewStub(channel_);
  grpc::ClientContext ctx;
  v1::ClassifyRequest req;
  req.set_model("slow");
  std::ifstream png(CNNSERVE_SOURCE_DIR "/samples/digit_1.png", std::ios::binary);
  std::ostringstream bytes;
  bytes << png.rdbuf();
  req.add_images(bytes.str());
  v1::ClassifyResponse resp;
  absl::Notification answered;
  grpc::Status status;
  classifier->async()->Classify(&ctx, &req, &resp, [&](grpc::Status s) {
    status = s;
    answered.Notify();
  });
  // The request is queued once the model's queue gauge says so.
  const int http_port = server_->http_port();
  for (int i = 0; i < 100000 && HttpGet(http_port, "/metrics").body.find(
                                    "cnnserve_queue_depth{model=\"slow\",version=\"1\"} 1") ==
                                    std::string::npos;
       ++i) {
  }
  std::thread shutdown([&] { server_->Shutdown(); });
  int ready = 200;
  for (int i = 0; i < 100000 && ready == 200 && !answered.HasBeenNotified(); ++i) {
    ready = HttpGet(http_port, "/v2/health/ready").status;
  }
  EXPECT_EQ(ready, 503) << "readiness must turn false while draining";
  // Clients that have not noticed keep being refused by the handler, with
  // UNAVAILABLE (gRPC's own Shutdown would cancel calls still arriving).
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext late_ctx;
    v1::ClassifyResponse late_resp;
    const grpc::Status late = classifier->Classify(&late_ctx, req, &late_resp);
    EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE) << i;
    EXPECT_THAT(late.error_message(), ::testing::HasSubstr("shutting down")) << i;
  }
  answered.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.results_size(), 1);
  shutdown.join();
}

}  // namespace
}  // namespace cnnserve::server
