// Slow and vanishing clients against the whole server over real sockets:
// callers that cancel while their requests wait give their queue slots back
// at once and cost no compute; connections that never finish their HTTP/2
// handshake are closed and hold no memory.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_server.h"

namespace cnnserve::server {
namespace {

namespace fs = std::filesystem;

constexpr char kModel[] = "slow";

// A ResNet-18 on one thread with a queue of 4: a 64-item batch keeps its
// only instance busy for about two seconds, time for the test's steps even
// on a loaded machine.
constexpr char kConfig[] = R"(
platform: "zoo"
zoo: "resnet18"
max_batch_size: 64
dynamic_batching { max_queue_delay_micros: 0  max_queue_size: 4 }
instance_group { count: 1  threads: 1 }
)";

inference::ModelInferRequest Request(int items) { return testing::ZeroImagesRequest(kModel, items); }

// One asynchronous call: its context (to cancel it) and its answer.
struct Call {
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status;
  absl::Notification done;
};

int64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

class SlowClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repository_ = new fs::path(testing::WriteRepository("slow_clients", {{kModel, kConfig}}));
    server_ = testing::StartServer(*repository_, [](Server::Options& o) {
      o.handshake_timeout = absl::Seconds(1);
    });
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(*repository_);
    delete repository_;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<Call> Send(const inference::ModelInferRequest& request) {
    auto call = std::make_unique<Call>();
    Call* c = call.get();
    stub_->async()->ModelInfer(&c->context, &request, &c->response, [c](grpc::Status s) {
      c->status = std::move(s);
      c->done.Notify();
    });
    return call;
  }

  double Metric(const std::string& name) {
    return testing::ModelMetric(server_->http_port(), name, kModel);
  }
  // Items the model has computed so far: the sum of its batch-size histogram.
  int64_t ItemsComputed() { return static_cast<int64_t>(Metric("cnnserve_batch_size_sum")); }
  // Polls the server's gauges (there is no event to wait on from outside)
  // until `inflight` requests are accepted and `queued` of them wait.
  void AwaitServerState(int inflight, int queued) {
    for (int i = 0; i < 1000; ++i) {
      if (Metric("cnnserve_inflight_requests") == inflight && Metric("cnnserve_queue_depth") == queued) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    FAIL() << "the server never reached " << inflight << " in flight, " << queued << " queued";
  }

  static fs::path* repository_;
  static Server* server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

fs::path* SlowClientsTest::repository_ = nullptr;
Server* SlowClientsTest::server_ = nullptr;

TEST_F(SlowClientsTest, CancelledRequestsFreeTheirSlotsAndAreNeverComputed) {
  const int64_t computed_before = ItemsComputed();
  const auto big = Request(64), small = Request(1), victim = Request(8);
  std::unique_ptr<Call> running = Send(big);
  // The idle instance took it: its batch has started (counted at start).
  // "1 in flight, none queued" alone is also true while the 38 MB request
  // is still being decoded, and then a later, smaller one may run first.
  for (int i = 0; i < 2000 && ItemsComputed() - computed_before < 64; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(ItemsComputed() - computed_before, 64) << "the batch of 64 never started";
  AwaitServerState(1, 0);

  std::vector<std::unique_ptr<Call>> victims;
  for (int i = 0; i < 4; ++i) victims.push_back(Send(victim));
  AwaitServerState(5, 4);
  std::unique_ptr<Call> refused = Send(small);
  refused->done.WaitForNotification();
  ASSERT_EQ(refused->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "the queue of 4 should be full: " << refused->status.error_message();

  for (auto& v : victims) v->context.TryCancel();  // the waiting callers go away
  // Each cancellation reaches the server as an HTTP/2 RST_STREAM; the
  // server answers the request and drops it from the queue as it reads it,
  // while the big batch still runs.
  AwaitServerState(1, 0);
  EXPECT_FALSE(running->done.HasBeenNotified()) << "the batch of 64 ended before the slots came back";
  std::vector<std::unique_ptr<Call>> after;
  for (int i = 0; i < 4; ++i) after.push_back(Send(small));
  AwaitServerState(5, 4);  // the four slots are theirs
  EXPECT_FALSE(running->done.HasBeenNotified()) << "the batch of 64 ended before the slots were reused";
  for (auto& c : after) {
    c->done.WaitForNotification();
    EXPECT_TRUE(c->status.ok()) << "a request after the cancellations was refused: "
                                << c->status.error_message();
  }
  running->done.WaitForNotification();
  EXPECT_TRUE(running->status.ok()) << running->status.error_message();
  for (auto& v : victims) {
    v->done.WaitForNotification();
    EXPECT_EQ(v->status.error_code(), grpc::StatusCode::CANCELLED);
  }
  // The running batch and the four late requests; no cancelled item ran.
  EXPECT_EQ(ItemsComputed() - computed_before, 64 + 4);
}

TEST_F(SlowClientsTest, ConnectionsThatNeverHandshakeAreClosedAndHoldNoMemory) {
  const int64_t rss_before = ResidentBytes();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->grpc_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> sockets;
  for (int i = 0; i < 200; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const timeval limit{10, 0};  // a read never hangs the test
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    // Half of them go silent at once, half after part of the HTTP/2 preface.
    if (i % 2 == 1) {
      ASSERT_GT(write(fd, "PRI * HTTP/2.0\r\n", 16), 0);
    }
    sockets.push_back(fd);
  }
  auto ok = Send(Request(1));  // good callers are still served meanwhile
  ok->done.WaitForNotification();
  EXPECT_TRUE(ok->status.ok()) << ok->status.error_message();
  const int64_t rss_held = ResidentBytes();
  EXPECT_LT(rss_held - rss_before, 32 << 20) << "200 idle sockets should not pin memory";

  // The server closes each within the 1 s handshake timeout (poll allows 10 s).
  int closed = 0;
  for (int fd : sockets) {
    pollfd p{fd, POLLIN, 0};
    char buf[256];
    if (poll(&p, 1, 10'000) == 1) {
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) {
      }
      if (n == 0 || errno == ECONNRESET) ++closed;
    }
    close(fd);
  }
  EXPECT_EQ(closed, 200);
}

}  // namespace
}  // namespace cnnserve::server
