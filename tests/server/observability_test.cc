// Metrics, HTTP health and gRPC health of a real server on loopback ports
// the kernel picks: counters move by exactly what was sent, batching shows
// in the batch-size histogram, and probes tell the truth about models.
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/server.h"
#include "tests/server/http_get.h"

namespace cnnserve::server {
namespace {

using ::cnnserve::testing::HttpGet;
using ::testing::HasSubstr;

// The value of one exposition line "<series> <value>", or 0 if absent.
double Sample(const std::string& body, const std::string& series) {
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

// `only`: explicit model control, loading just that model.
std::unique_ptr<Server> StartServer(const std::string& repository, const std::string& only = "") {
  Server::Options options;
  options.model_repository = repository;
  if (!only.empty()) {
    options.model_control_mode = "explicit";
    options.load_models = {only};
  }
  options.host = "127.0.0.1";
  options.grpc_port = 0;
  options.http_port = 0;
  auto s = Server::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

inference::ModelInferRequest DigitRequest(int items) {
  inference::ModelInferRequest r;
  r.set_model_name("digits_lenet5");
  auto* t = r.add_inputs();
  t->set_name("input");
  t->set_datatype("FP32");
  for (int64_t d : {int64_t{items}, int64_t{1}, int64_t{32}, int64_t{32}}) t->add_shape(d);
  r.add_raw_input_contents(std::string(items * 4096, '\0'));
  return r;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer(CNNSERVE_SOURCE_DIR "/models", "digits_lenet5");
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }
  std::string Metrics() { return HttpGet(server_->http_port(), "/metrics").body; }
  grpc::Status Infer(const inference::ModelInferRequest& r) {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    return stub_->ModelInfer(&ctx, r, &resp);
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

constexpr char kOk[] = R"(cnnserve_requests_total{code="OK",model="digits_lenet5",version="1"})";
constexpr char kInvalid[] =
    R"(cnnserve_requests_total{code="INVALID_ARGUMENT",model="digits_lenet5",version="1"})";
constexpr char kNotFound[] = R"(cnnserve_requests_total{code="NOT_FOUND",model="",version=""})";

TEST_F(ObservabilityTest, CountersMoveByExactlyTheRequestsSent) {
  const std::string before = Metrics();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Infer(DigitRequest(2)).ok());
  auto bad = DigitRequest(1);
  bad.mutable_inputs(0)->set_shape(3, 31);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Infer(bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto unknown = DigitRequest(1);
  unknown.set_model_name("no_such_model");
  EXPECT_EQ(Infer(unknown).error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string after = Metrics();
  EXPECT_EQ(Sample(after, kOk) - Sample(before, kOk), 3);
  EXPECT_EQ(Sample(after, kInvalid) - Sample(before, kInvalid), 2);
  EXPECT_EQ(Sample(after, kNotFound) - Sample(before, kNotFound), 1);
  const std::string items = R"(cnnserve_batch_size_sum{model="digits_lenet5",version="1"})";
  EXPECT_EQ(Sample(after, items) - Sample(before, items), 6);  // 3 requests x 2 items
  EXPECT_EQ(Sample(after, R"(cnnserve_inflight_requests{model="digits_lenet5",version="1"})"), 0);
  EXPECT_EQ(Sample(after, R"(cnnserve_queue_depth{model="digits_lenet5",version="1"})"), 0);
  const std::string total = R"(cnnserve_request_duration_seconds_count{model="digits_lenet5",version="1"})";
  EXPECT_EQ(Sample(after, total) - Sample(before, total), 5);
}

TEST_F(ObservabilityTest, BatchSizeHistogramShowsBatchesAboveOneUnderConcurrentLoad) {
  const std::string count = R"(cnnserve_batch_size_count{model="digits_lenet5",version="1"})";
  const std::string sum = R"(cnnserve_batch_size_sum{model="digits_lenet5",version="1"})";
  const std::string before = Metrics();
  constexpr int kRequests = 256;
  const auto request = DigitRequest(1);
  struct Call {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    absl::Notification done;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kRequests; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call* c = calls.back().get();
    stub_->async()->ModelInfer(&c->ctx, &request, &c->resp, [c](grpc::Status s) {
      c->status = s;
      c->done.Notify();
    });
  }
  for (auto& c : calls) {
    c->done.WaitForNotification();
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
  }
  const std::string after = Metrics();
  EXPECT_EQ(Sample(after, sum) - Sample(before, sum), kRequests);
  EXPECT_LT(Sample(after, count) - Sample(before, count), kRequests)
      << "every request ran alone: no batch held more than one item";
}

TEST_F(ObservabilityTest, HttpEndpointsTellReadinessAndServeMetrics) {
  const int port = server_->http_port();
  EXPECT_EQ(HttpGet(port, "/v2/health/live").status, 200);
  EXPECT_EQ(HttpGet(port, "/v2/health/ready").status, 200);
  EXPECT_EQ(HttpGet(port, "/v2/models/digits_lenet5/ready").status, 200);
  EXPECT_EQ(HttpGet(port, "/v2/models/digits_lenet5/versions/1/ready").status, 200);
  EXPECT_EQ(HttpGet(port, "/v2/models/digits_lenet5/versions/7/ready").status, 404);
  EXPECT_EQ(HttpGet(port, "/v2/models/nope/ready").status, 404);
  EXPECT_EQ(HttpGet(port, "/admin").status, 404);
  const std::string body = Metrics();
  for (const char* name : {"cnnserve_build_info{", "process_resident_memory_bytes ",
                           "process_cpu_seconds_total ", "process_open_fds ",
                           "process_start_time_seconds ", "cnnserve_model_load_duration_seconds{",
                           "cnnserve_compute_duration_seconds_bucket{",
                           "cnnserve_queue_duration_seconds_bucket{",
                           "cnnserve_preprocess_duration_seconds_bucket{"}) {
    EXPECT_THAT(body, HasSubstr(name));
  }
  EXPECT_EQ(Sample(body, R"(cnnserve_model_ready{model="digits_lenet5",version="1"})"), 1);
}

TEST_F(ObservabilityTest, GrpcHealthServesTheServerAndEachModel) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "digits_lenet5"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("no_such_model");
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_EQ(health->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ObservabilityBrokenModelTest, ProbesReportTheFailedModelAndServeTheRest) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "observability_repo";
  fs::remove_all(root);
  fs::create_directories(root / "broken" / "1");
  std::ofstream(root / "broken" / "1" / "model.onnx") << "not onnx";
  fs::create_directories(root / "digits" / "1");
  fs::copy_file(CNNSERVE_SOURCE_DIR "/models/digits_lenet5/1/model.onnx",
                root / "digits" / "1" / "model.onnx");
  auto server = StartServer(root.string());
  ASSERT_NE(server, nullptr);
  const int port = server->http_port();
  EXPECT_EQ(HttpGet(port, "/v2/health/ready").status, 503);
  EXPECT_EQ(HttpGet(port, "/v2/models/broken/ready").status, 503);
  EXPECT_EQ(HttpGet(port, "/v2/models/digits/ready").status, 200);
  const std::string body = HttpGet(port, "/metrics").body;
  EXPECT_EQ(Sample(body, R"(cnnserve_model_ready{model="broken",version="1"})"), 0);
  EXPECT_THAT(body, HasSubstr(R"(cnnserve_model_ready{model="broken",version="1"} 0)"));

  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server->grpc_port()), grpc::InsecureChannelCredentials()));
  for (auto [service, want] : {std::pair{"", grpc::health::v1::HealthCheckResponse::NOT_SERVING},
                               {"broken", grpc::health::v1::HealthCheckResponse::NOT_SERVING},
                               {"digits", grpc::health::v1::HealthCheckResponse::SERVING}}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), want) << service;
  }
}

}  // namespace
}  // namespace cnnserve::server
