// The bad-input catalogue: every malformed request, image, model file and
// config gets its gRPC code and a message saying what was wrong, and after
// each one the server is still live and still classifies a good request
// correctly. One server (explicit model control) on a scratch repository.
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <unistd.h>

#include "cnnserve/v1/classifier.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "server/server.h"

namespace cnnserve::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using inference::ModelInferRequest;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Source(const std::string& rel) { return ReadFile(fs::path(CNNSERVE_SOURCE_DIR) / rel); }

// A digits request of `n` items, every value `v`, FP32 raw.
ModelInferRequest Fp32(int64_t n, float v = 0.5f) {
  ModelInferRequest r;
  r.set_model_name("digits_lenet5");
  auto* t = r.add_inputs();
  t->set_name("input");
  t->set_datatype("FP32");
  for (int64_t d : {n, int64_t{1}, int64_t{32}, int64_t{32}}) t->add_shape(d);
  std::vector<float> values(std::max<int64_t>(n, 0) * 32 * 32, v);
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return r;
}

// A BYTES request carrying `files`, asking for the top class.
ModelInferRequest Images(const std::vector<std::string>& files) {
  ModelInferRequest r;
  r.set_model_name("digits_lenet5");
  auto* t = r.add_inputs();
  t->set_name("input");
  t->set_datatype("BYTES");
  t->add_shape(files.size());
  for (const std::string& f : files) t->mutable_contents()->add_bytes_contents(f);
  auto* out = r.add_outputs();
  out->set_name("logits");
  (*out->mutable_parameters())["classification"].set_int64_param(1);
  return r;
}

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::path(::testing::TempDir()) / ("bad_input_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    fs::copy(CNNSERVE_SOURCE_DIR "/models/digits_lenet5", *root_ / "digits_lenet5", fs::copy_options::recursive);
    Server::Options options;
    options.model_repository = root_->string();
    options.model_control_mode = "explicit";
    options.load_models = {"digits_lenet5"};
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.http_port = 0;
    options.max_message_bytes = 1 << 20;
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
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  grpc::Status Infer(const ModelInferRequest& r, inference::ModelInferResponse* resp = nullptr,
                     std::chrono::microseconds deadline = std::chrono::seconds(30)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    inference::ModelInferResponse ignored;
    return stub_->ModelInfer(&ctx, r, resp ? resp : &ignored);
  }
  grpc::Status Load(const std::string& model) {
    grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(model);
    inference::RepositoryModelLoadResponse resp;
    return stub_->RepositoryModelLoad(&ctx, req, &resp);
  }
  // The server is live and classifies the sample 3 as 3.
  void ExpectStillServing(const std::string& after) {
    grpc::ClientContext ctx;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(stub_->ServerLive(&ctx, {}, &live).ok()) << "after " << after;
    EXPECT_TRUE(live.live());
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(Images({Source("samples/digit_3.png")}), &resp);
    ASSERT_TRUE(s.ok()) << "after " << after << ": " << s.error_message();
    EXPECT_THAT(resp.outputs(0).contents().bytes_contents(0), ::testing::EndsWith(":3:3")) << "after " << after;
  }

  struct Case {
    std::string name;
    std::function<ModelInferRequest()> request;
    grpc::StatusCode code;
    std::string says;
  };
  void Run(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
      grpc::Status s = Infer(c.request());
      EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr(c.says)) << c.name;
      ExpectStillServing(c.name);
    }
  }

  static fs::path* root_;
  static Server* server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

fs::path* BadInputTest::root_ = nullptr;
Server* BadInputTest::server_ = nullptr;

TEST_F(BadInputTest, MalformedRequestsGetTheirCodes) {
  using C = grpc::StatusCode;
  Run({
      {"unknown model", [] { auto r = Fp32(1); r.set_model_name("nope"); return r; }, C::NOT_FOUND, "unknown model 'nope'"},
      {"unknown version", [] { auto r = Fp32(1); r.set_model_version("7"); return r; }, C::NOT_FOUND, "no version 7"},
      {"wrong datatype", [] { auto r = Fp32(1); r.mutable_inputs(0)->set_datatype("INT64"); return r; },
       C::INVALID_ARGUMENT, "expects FP32"},
      {"wrong rank", [] { auto r = Fp32(1); r.mutable_inputs(0)->mutable_shape()->RemoveLast(); return r; },
       C::INVALID_ARGUMENT, "model expects [N,1,32,32]"},
      {"wrong dims", [] { auto r = Fp32(1); r.mutable_inputs(0)->set_shape(3, 31); return r; },
       C::INVALID_ARGUMENT, "has shape [1,1,32,31]"},
      {"raw size mismatch", [] { auto r = Fp32(1); r.mutable_raw_input_contents(0)->resize(100); return r; },
       C::INVALID_ARGUMENT, "raw content is 100 bytes"},
      {"raw and typed", [] { auto r = Fp32(1); r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1); return r; },
       C::INVALID_ARGUMENT, "both in raw_input_contents and in contents"},
      {"missing input", [] { auto r = Fp32(1); r.clear_inputs(); r.clear_raw_input_contents(); return r; },
       C::INVALID_ARGUMENT, "the request has 0"},
      {"extra input", [] { auto r = Fp32(1); *r.add_inputs() = r.inputs(0); return r; },
       C::INVALID_ARGUMENT, "the request has 2"},
      {"unknown output", [] { auto r = Fp32(1); r.add_outputs()->set_name("probs"); return r; },
       C::INVALID_ARGUMENT, "probs"},
      {"zero items", [] { return Fp32(0); }, C::INVALID_ARGUMENT, "N >= 1"},
      {"too many items", [] { return Fp32(33); }, C::INVALID_ARGUMENT, "max_batch_size 32"},
      {"classification 0", [] {
         auto r = Fp32(1);
         auto* o = r.add_outputs();
         o->set_name("logits");
         (*o->mutable_parameters())["classification"].set_int64_param(0);
         return r;
       }, C::INVALID_ARGUMENT, "classification must be positive"},
      {"classification -3", [] {
         auto r = Fp32(1);
         auto* o = r.add_outputs();
         o->set_name("logits");
         (*o->mutable_parameters())["classification"].set_int64_param(-3);
         return r;
       }, C::INVALID_ARGUMENT, "classification must be positive"},
      {"over the message limit", [] { return Fp32(300); }, C::RESOURCE_EXHAUSTED, ""},
  });
}

TEST_F(BadInputTest, NanAndInfAreAnsweredNotCrashed) {
  for (float v : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity()}) {
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(Fp32(2, v), &resp);
    EXPECT_TRUE(s.ok()) << v << ": " << s.error_message();
    ExpectStillServing("a tensor of " + std::to_string(v));
  }
}

TEST_F(BadInputTest, BadImagesAreRefusedAndOddPngsHandled) {
  using C = grpc::StatusCode;
  const std::string png = Source("samples/digit_3.png");
  const std::string jpeg = Source("tests/data/digit_3_32x32.jpg");
  std::string corrupt_jpeg = jpeg;
  for (size_t i = corrupt_jpeg.size() / 3; i < corrupt_jpeg.size() / 2; ++i) corrupt_jpeg[i] = '\x55';
  Run({
      {"empty BYTES element", [] { return Images({""}); }, C::INVALID_ARGUMENT, "image is empty"},
      {"corrupt JPEG", [=] { return Images({jpeg.substr(0, 2) + std::string(200, 'x')}); },
       C::INVALID_ARGUMENT, "image 0"},
      {"truncated PNG", [=] { return Images({png.substr(0, png.size() / 2)}); }, C::INVALID_ARGUMENT, "PNG"},
      {"20000x20000 header", [] { return Images({Source("tests/data/images/bomb_20000x20000.png")}); },
       C::INVALID_ARGUMENT, "20000x20000 pixels; the limit is"},
      {"not an image", [] { return Images({"GIF89a"}); }, C::INVALID_ARGUMENT, "neither a PNG nor a JPEG"},
  });
  // A JPEG with garbage in its entropy-coded data decodes (libjpeg-turbo
  // warns and fills) or is refused; either way no crash.
  grpc::Status s = Infer(Images({corrupt_jpeg}));
  EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  ExpectStillServing("a corrupt JPEG body");
  // 16-bit, palette and RGBA PNGs are converted to the model's gray.
  for (const char* f : {"digit_5_gray16.png", "digit_5_palette.png", "digit_5_rgba.png"}) {
    inference::ModelInferResponse resp;
    s = Infer(Images({Source(std::string("tests/data/images/") + f)}), &resp);
    ASSERT_TRUE(s.ok()) << f << ": " << s.error_message();
    EXPECT_THAT(resp.outputs(0).contents().bytes_contents(0), ::testing::EndsWith(":5:5")) << f;
  }
}

TEST_F(BadInputTest, AOneMicrosecondDeadlineIsDeadlineExceeded) {
  // gRPC's timers are coarser than 1 us: on a quiet machine a call that
  // completes within one tick comes back OK (seen in 7 of 10 tries), so no
  // share of DEADLINE_EXCEEDED can be promised. Every answer must be one of
  // the two and the server must keep serving. (A deadline passing in the
  // queue is tested deterministically in ServicesTest and BatcherTest.)
  for (int i = 0; i < 10; ++i) {
    grpc::Status s = Infer(Fp32(1), nullptr, std::chrono::microseconds(1));
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  }
  ExpectStillServing("a 1 us deadline");
}

TEST_F(BadInputTest, BadModelFilesAndConfigsAreRefusedWithTheirReason) {
  const std::string good = Source("models/digits_lenet5/1/model.onnx");
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(good));
  auto variant = [&](const std::function<void(onnx::ModelProto*)>& change) {
    onnx::ModelProto m = proto;
    change(&m);
    return m.SerializeAsString();
  };
  struct ModelCase {
    std::string name, file, config, says;
  } cases[] = {
      {"truncated", good.substr(0, good.size() / 2), "", "not a valid ONNX model"},
      {"empty", "", "", "ONNX"},
      {"random", std::string(4096, '\x9c'), "", "ONNX"},
      {"external data", variant([](onnx::ModelProto* m) {
         auto* w = m->mutable_graph()->mutable_initializer(0);
         w->clear_raw_data();
         w->clear_float_data();
         w->set_data_location(onnx::TensorProto::EXTERNAL);
       }), "", "external data"},
      {"huge initializer", variant([](onnx::ModelProto* m) {
         auto* w = m->mutable_graph()->mutable_initializer(0);
         w->clear_dims();
         for (int64_t d : {1000, 1000, 1000}) w->add_dims(d);
       }), "", "1000000000 elements"},
      {"dangling edge", variant([](onnx::ModelProto* m) {
         m->mutable_graph()->mutable_node(m->graph().node_size() - 1)->set_input(0, "nowhere");
       }), "", "'nowhere' is not produced"},
      {"cycle", variant([](onnx::ModelProto* m) {
         m->mutable_graph()->mutable_node(0)->set_input(0, m->graph().output(0).name());
       }), "", "not produced"},
      {"unknown config field", good, "max_batch: 4\n", "config.pbtxt:1:"},
      {"impossible config", good, "max_batch_size: 8\ndynamic_batching { preferred_batch_size: 9 }\n",
       "config.pbtxt:2: dynamic_batching.preferred_batch_size[0]: is 9"},
  };
  int i = 0;
  for (const ModelCase& c : cases) {
    const std::string name = "bad" + std::to_string(i++);
    fs::create_directories(*root_ / name / "1");
    std::ofstream(*root_ / name / "1" / "model.onnx", std::ios::binary) << c.file;
    if (!c.config.empty()) std::ofstream(*root_ / name / "config.pbtxt") << c.config;
    grpc::Status s = Load(name);
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_THAT(s.error_message(), HasSubstr(c.says)) << c.name;
    ExpectStillServing("a model that is " + c.name);
  }
}

}  // namespace
}  // namespace cnnserve::server
