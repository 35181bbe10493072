// The model repository on a scratch directory: version policies, poll
// reloads (new version first, then the old one retired), failed reloads and
// bad configs that keep the serving version, unload draining queued
// requests, explicit model control, and names that try to leave the root.
#include "server/model_repository.h"

#include <atomic>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/process_threads.h"

namespace cnnserve::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char kDigits[] = CNNSERVE_SOURCE_DIR "/models/digits_lenet5/1/model.onnx";

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("repo_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(root_);
  }
  void AddVersion(const std::string& model, int version) {
    fs::create_directories(root_ / model / std::to_string(version));
    fs::copy_file(kDigits, root_ / model / std::to_string(version) / "model.onnx",
                  fs::copy_options::overwrite_existing);
  }
  void Write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  ModelRepository& Open(ModelControlMode mode, std::vector<std::string> startup = {}) {
    ModelRepository::Options o;
    o.root = root_.string();
    o.control_mode = mode;
    o.startup_models = std::move(startup);
    o.metrics = &metrics_;
    auto r = ModelRepository::Create(o);
    EXPECT_TRUE(r.ok()) << r.status();
    repo_ = *std::move(r);
    repo_->LoadAll();
    return *repo_;
  }
  std::string ServedVersion(const std::string& model, const std::string& version = "") {
    auto m = repo_->Find(model, version);
    return m.ok() ? std::to_string((*m)->version) : std::string(m.status().message());
  }
  std::string Reasons() {
    std::string all;
    for (const auto& e : repo_->Index(false)) all += e.name + "/" + e.version + " " + e.state + " " + e.reason + "\n";
    return all;
  }

  fs::path root_;
  Metrics metrics_{"test", "test", "test"};
  std::unique_ptr<ModelRepository> repo_;
};

TEST_F(RepositoryTest, ServesTheLatestVersionByDefault) {
  AddVersion("digits", 1);
  AddVersion("digits", 2);
  ModelRepository& repo = Open(ModelControlMode::kNone);
  EXPECT_TRUE(repo.AllReady());
  EXPECT_EQ(ServedVersion("digits"), "2");
  EXPECT_EQ(repo.Find("digits", "1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo.Find("digits", "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo.Find("nope", "").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, VersionPoliciesPickTheirVersions) {
  for (int v : {1, 2, 3}) {
    AddVersion("all", v);
    AddVersion("two", v);
    AddVersion("some", v);
  }
  Write(root_ / "all" / "config.pbtxt", "version_policy { all { } }");
  Write(root_ / "two" / "config.pbtxt", "version_policy { latest { num_versions: 2 } }");
  Write(root_ / "some" / "config.pbtxt", "version_policy { specific { versions: [1, 3] } }");
  Open(ModelControlMode::kNone);
  for (const char* v : {"1", "2", "3"}) EXPECT_EQ(ServedVersion("all", v), v);
  EXPECT_EQ(repo_->Find("two", "1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ServedVersion("two", "2"), "2");
  EXPECT_EQ(ServedVersion("some", "1"), "1");
  EXPECT_EQ(repo_->Find("some", "2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ServedVersion("some"), "3");
}

TEST_F(RepositoryTest, AZooModelNeedsOnlyItsConfig) {
  Write(root_ / "lenet" / "config.pbtxt", "platform: \"zoo\"\nzoo: \"lenet5\"\nmax_batch_size: 4\n");
  Open(ModelControlMode::kNone);
  auto m = repo_->Find("lenet", "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->version, 1);
  EXPECT_EQ((*m)->max_batch_size(), 4);
}

TEST_F(RepositoryTest, AModelOnTwoThreadsHoldsNoOpenMpThreadsOnceIdle) {
  // libgomp sleeps between layers while the process holds more OpenMP
  // threads than cores (server/idle_exit_thread.h): an idle model must not
  // keep the ones its batches started, nor its load the ones it used.
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "under TSan an instance keeps its OpenMP threads until unload (served_model.cc)";
#endif
  Write(root_ / "r20" / "config.pbtxt",
        "platform: \"zoo\"\nzoo: \"resnet20_cifar\"\nmax_batch_size: 4\n"
        "instance_group { count: 1  threads: 2 }\n");
  const int before = ThreadsInProcess();
  Open(ModelControlMode::kNone);
  auto m = repo_->Find("r20", "");
  ASSERT_TRUE(m.ok()) << m.status();
  std::atomic<bool> ok{false};
  absl::Notification answered;
  SubmitInfer(*m, 1, std::vector<float>(3 * 32 * 32), absl::InfiniteFuture(), nullptr,
              [&](auto out, auto, auto) {
                ok = out.ok();
                answered.Notify();
              });
  answered.WaitForNotification();
  EXPECT_TRUE(ok);
  // Left: the batcher's worker, waiting for the next batch.
  EXPECT_TRUE(ThreadsComeBackTo(before + 1)) << ThreadsInProcess() << " threads, want " << before + 1;
}

TEST_F(RepositoryTest, PollLoadsANewVersionAndRetiresTheOldOne) {
  AddVersion("digits", 1);
  Open(ModelControlMode::kPoll);
  auto old = repo_->Find("digits", "");
  ASSERT_TRUE(old.ok());
  AddVersion("digits", 2);
  repo_->Poll();
  EXPECT_EQ(ServedVersion("digits"), "2");
  EXPECT_EQ(repo_->Find("digits", "1").status().code(), absl::StatusCode::kNotFound);
  // A request that still holds version 1 finds it retired, not gone.
  std::atomic<int> code{-1};
  SubmitInfer(*old, 1, std::vector<float>(32 * 32), absl::InfiniteFuture(), nullptr,
              [&](auto out, auto, auto) { code = static_cast<int>(out.status().code()); });
  EXPECT_EQ(code, static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST_F(RepositoryTest, AFailedReloadKeepsTheServingVersion) {
  AddVersion("digits", 1);
  Open(ModelControlMode::kPoll);
  auto before = repo_->Find("digits", "1");
  ASSERT_TRUE(before.ok());
  Write(root_ / "digits" / "1" / "model.onnx", "this is not an ONNX model");
  repo_->Poll();
  auto after = repo_->Find("digits", "1");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->get(), before->get());
  EXPECT_THAT(Reasons(), HasSubstr("digits/1 READY version 1 failed to load"));
  EXPECT_THAT(Reasons(), HasSubstr("keeps serving"));
  // Fixed on disk, the next poll loads it.
  AddVersion("digits", 1);
  repo_->Poll();
  auto fixed = repo_->Find("digits", "1");
  ASSERT_TRUE(fixed.ok());
  EXPECT_NE(fixed->get(), before->get());
  EXPECT_THAT(Reasons(), ::testing::Not(HasSubstr("failed")));
}

TEST_F(RepositoryTest, ABadConfigIsReportedWithItsLineAndTheModelKeepsServing) {
  AddVersion("digits", 1);
  Open(ModelControlMode::kPoll);
  Write(root_ / "digits" / "config.pbtxt", "max_batch_size: 8\ndynamic_batching { preferred_batch_size: 99 }\n");
  repo_->Poll();
  EXPECT_EQ(ServedVersion("digits"), "1");
  EXPECT_THAT(Reasons(), HasSubstr("config.pbtxt:2: dynamic_batching.preferred_batch_size"));
}

TEST_F(RepositoryTest, AConfigThatDoesNotFitTheModelIsRefused) {
  AddVersion("digits", 1);
  Write(root_ / "digits" / "config.pbtxt", "input { format: RGB }\n");
  Open(ModelControlMode::kNone);
  EXPECT_FALSE(repo_->AllReady());
  auto m = repo_->Find("digits", "");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("input.format RGB does not fit"));
}

TEST_F(RepositoryTest, ARemovedModelIsUnloadedByThePoll) {
  AddVersion("digits", 1);
  AddVersion("other", 1);
  Open(ModelControlMode::kPoll);
  fs::remove_all(root_ / "other");
  repo_->Poll();
  EXPECT_EQ(repo_->Find("other", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ServedVersion("digits"), "1");
}

TEST_F(RepositoryTest, UnloadAnswersEveryQueuedRequestFirst) {
  AddVersion("digits", 1);
  Write(root_ / "digits" / "config.pbtxt",
        "max_batch_size: 4\ndynamic_batching { max_queue_delay_micros: 5000000 }\n");
  Open(ModelControlMode::kExplicit, {"digits"});
  auto m = repo_->Find("digits", "");
  ASSERT_TRUE(m.ok());
  constexpr int kRequests = 20;
  std::atomic<int> ok{0}, answered{0};
  for (int i = 0; i < kRequests; ++i) {
    SubmitInfer(*m, 1, std::vector<float>(32 * 32), absl::InfiniteFuture(), nullptr,
                [&](auto out, auto, auto) {
                  ok += out.ok();
                  ++answered;
                });
  }
  ASSERT_TRUE(repo_->Unload("digits").ok());
  EXPECT_EQ(answered, kRequests);  // none waited out the 5 s delay, none was dropped
  EXPECT_EQ(ok, kRequests);
  auto gone = repo_->Find("digits", "");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("not loaded"));
  EXPECT_THAT(Reasons(), HasSubstr("digits/ UNAVAILABLE unloaded"));
}

TEST_F(RepositoryTest, ExplicitModeLoadsOnlyWhatItIsAskedFor) {
  AddVersion("a", 1);
  AddVersion("b", 1);
  ModelRepository& repo = Open(ModelControlMode::kExplicit, {"a"});
  EXPECT_EQ(ServedVersion("a"), "1");
  EXPECT_EQ(repo.Find("b", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Reasons(), HasSubstr("b/ UNAVAILABLE not loaded"));
  ASSERT_TRUE(repo.Load("b").ok());
  EXPECT_EQ(ServedVersion("b"), "1");
  EXPECT_EQ(repo.Load("c").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo.Unload("c").code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, LoadAndUnloadNeedExplicitMode) {
  AddVersion("a", 1);
  ModelRepository& repo = Open(ModelControlMode::kPoll);
  EXPECT_EQ(repo.Load("a").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo.Unload("a").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RepositoryTest, NamesThatLeaveTheRepositoryAreRefused) {
  AddVersion("a", 1);
  fs::create_directories(root_.parent_path() / "outside" / "1");
  ModelRepository& repo = Open(ModelControlMode::kExplicit);
  for (const char* bad : {"", ".", "..", "../outside", "a/../a", "/etc", ".hidden", "a\\b"}) {
    absl::Status s = repo.Load(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("is not valid")) << bad;
  }
  EXPECT_EQ(repo.Load(std::string("a\0b", 3)).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cnnserve::server
