#include "server/model_repository.h"

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "server/infer_task.h"
#include "server/log.h"
#include "prometheus/gauge.h"
#include "absl/time/clock.h"

namespace cnnserve::server {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> ReadLabels(const fs::path& path) {
  std::vector<std::string> labels;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

// Highest numeric subdirectory holding a model.onnx, or 0.
int64_t LatestVersion(const fs::path& model_dir) {
  int64_t latest = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory() && absl::SimpleAtoi(entry.path().filename().string(), &v) && v > 0 &&
        fs::exists(entry.path() / "model.onnx")) {
      latest = std::max(latest, v);
    }
  }
  return latest;
}

absl::StatusOr<std::unique_ptr<ServedModel>> LoadModel(const fs::path& dir, const std::string& name,
                                                       int64_t version,
                                                       const Batcher::Options& batching,
                                                       ModelMetrics* metrics) {
  auto served = std::make_unique<ServedModel>();
  served->name = name;
  served->version = version;
  served->metrics = metrics;
  ASSIGN_OR_RETURN(served->model,
                   engine::Model::Load((dir / std::to_string(version) / "model.onnx").string()));
  if (fs::exists(dir / "labels.txt")) served->labels = ReadLabels(dir / "labels.txt");
  const engine::Model* model = served->model.get();
  std::shared_ptr<engine::ExecutionContext> context = model->CreateContext();
  // Warm up: compile the single-item plan now, so the first request does not pay for it.
  std::vector<float> zeros(engine::ItemElements(model->input().shape));
  std::vector<engine::Tensor> ignored;
  RETURN_IF_ERROR(model->Run(*context, 1, zeros, &ignored));
  ASSIGN_OR_RETURN(served->batcher,
                   Batcher::Create(batching, [model, context, metrics](auto batch) {
                     RunInferBatch(*model, *context, *metrics, std::move(batch));
                   }));
  return served;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Load(const Options& options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return absl::NotFoundError("model repository '" + options.root + "' is not a directory");
  }
  auto repo = std::unique_ptr<ModelRepository>(new ModelRepository());
  for (const auto& entry : fs::directory_iterator(options.root, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    const absl::Time load_start = absl::Now();
    ModelEntry& e = repo->entries_[name];
    e.name = name;
    e.version = LatestVersion(entry.path());
    if (e.version == 0) {
      e.status = absl::NotFoundError(absl::StrCat(
          "model '", name, "' has no version directory <n>/model.onnx under ", entry.path().string()));
    } else {
      ModelMetrics* metrics = options.metrics->ForModel(name, std::to_string(e.version),
                                                        options.batching.max_batch_size);
      const absl::Time start = absl::Now();
      absl::StatusOr<std::unique_ptr<ServedModel>> served =
          LoadModel(entry.path(), name, e.version, options.batching, metrics);
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
      metrics->load_duration->Set(seconds);
      metrics->ready->Set(served.ok() ? 1 : 0);
      if (served.ok()) {
        e.served = *std::move(served);
      } else {
        e.status = absl::UnavailableError(absl::StrCat("model '", name, "' version ", e.version,
                                                       " failed to load: ", served.status().message()));
      }
    }
    if (e.status.ok()) {
      Log(Severity::kInfo, "model ready", {{"model", name}, {"version", absl::StrCat(e.version)},
                                           {"load_seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - load_start))}});
    } else {
      Log(Severity::kError, "model failed to load",
          {{"model", name}, {"version", absl::StrCat(e.version)}, {"reason", std::string(e.status.message())}});
    }
  }
  if (ec) return absl::InternalError("cannot list '" + options.root + "': " + ec.message());
  return repo;
}

absl::StatusOr<const ServedModel*> ModelRepository::Find(const std::string& name,
                                                         const std::string& version) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return absl::NotFoundError("unknown model '" + name + "'");
  const ModelEntry& e = it->second;
  if (!version.empty() && version != std::to_string(e.version)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version '", version,
                                            "' loaded (loaded: ", e.version, ")"));
  }
  if (!e.status.ok()) return e.status;
  return e.served.get();
}

bool ModelRepository::AllReady() const {
  for (const auto& [name, e] : entries_) {
    if (!e.status.ok()) return false;
  }
  return true;
}

}  // namespace cnnserve::server
