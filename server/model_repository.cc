#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/fresh_thread.h"
#include "prometheus/gauge.h"
#include "server/log.h"

namespace cnnserve::server {
namespace fs = std::filesystem;

namespace {

// "path:size:mtime;" for each file that exists: enough to notice an edit.
std::string Stamp(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return "";
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return "";
  return absl::StrCat(path.filename().string(), ":", size, ":",
                      mtime.time_since_epoch().count(), ";");
}

std::string ModelFingerprint(const fs::path& dir) {
  return Stamp(dir / "config.pbtxt") + Stamp(dir / "labels.txt");
}

// Numeric version directories; for ONNX only those holding a model.onnx.
std::vector<int64_t> VersionsOnDisk(const fs::path& dir, const v1::ModelConfig& config) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory() && absl::SimpleAtoi(entry.path().filename().string(), &v) && v > 0 &&
        (config.platform() == "zoo" || fs::exists(entry.path() / "model.onnx"))) {
      versions.push_back(v);
    }
  }
  if (versions.empty() && config.platform() == "zoo") versions.push_back(1);
  std::sort(versions.begin(), versions.end());
  return versions;
}

// The versions the policy picks, and the specific ones it names that are missing.
std::pair<std::vector<int64_t>, std::vector<int64_t>> PickVersions(
    const std::vector<int64_t>& on_disk, const v1::VersionPolicy& policy) {
  std::vector<int64_t> picked, missing;
  if (policy.has_all()) {
    picked = on_disk;
  } else if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions()) {
      if (std::find(on_disk.begin(), on_disk.end(), v) != on_disk.end()) {
        picked.push_back(v);
      } else {
        missing.push_back(v);
      }
    }
  } else {
    const size_t n = std::min<size_t>(on_disk.size(), policy.latest().num_versions());
    picked.assign(on_disk.end() - n, on_disk.end());
  }
  return {picked, missing};
}

}  // namespace

absl::StatusOr<ModelControlMode> ParseModelControlMode(const std::string& text) {
  if (text == "none") return ModelControlMode::kNone;
  if (text == "poll") return ModelControlMode::kPoll;
  if (text == "explicit") return ModelControlMode::kExplicit;
  return absl::InvalidArgumentError(absl::StrCat("model control mode '", text,
                                                 "' is not one of none, poll, explicit"));
}

absl::Status ValidateModelName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("model name '", absl::CHexEscape(name),
                                                   "' is not valid: ", why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 255) return bad("it is longer than 255 bytes");
  if (name[0] == '.') return bad("it starts with '.' (no hidden or parent directories)");
  for (unsigned char c : name) {
    if (c == '/' || c == '\\') return bad("it contains a path separator");
    if (c < 0x20 || c == 0x7f) return bad("it contains a control character");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Create(const Options& options) {
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return absl::NotFoundError("model repository '" + options.root + "' is not a directory");
  }
  if (options.metrics == nullptr) return absl::InvalidArgumentError("a repository needs metrics");
  return std::unique_ptr<ModelRepository>(new ModelRepository(options));
}

ModelRepository::~ModelRepository() {
  absl::MutexLock ops(&ops_mu_);
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, st] : models_) names.push_back(name);
  }
  for (const std::string& name : names) UnloadLocked(name, /*forget=*/true);
}

std::vector<std::string> ModelRepository::ModelDirs() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.root, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && ValidateModelName(name).ok()) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void ModelRepository::LoadAll() {
  absl::MutexLock ops(&ops_mu_);
  std::vector<std::string> names = ModelDirs();
  if (options_.control_mode == ModelControlMode::kExplicit) {
    const auto& wanted = options_.startup_models;
    if (std::find(wanted.begin(), wanted.end(), "*") == wanted.end()) names = wanted;
  }
  for (const std::string& name : names) {
    if (absl::Status s = ValidateModelName(name); !s.ok()) {
      Log(Severity::kError, "model failed to load", {{"model", name}, {"reason", std::string(s.message())}});
      continue;
    }
    Reconcile(name, /*force=*/true).IgnoreError();  // logged and kept in the index
  }
}

void ModelRepository::Poll() {
  if (options_.control_mode != ModelControlMode::kPoll) return;
  absl::MutexLock ops(&ops_mu_);
  std::set<std::string> names;
  for (const std::string& name : ModelDirs()) names.insert(name);
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, st] : models_) names.insert(name);
  }
  for (const std::string& name : names) Reconcile(name, /*force=*/false).IgnoreError();
}

absl::Status ModelRepository::Load(const std::string& name) {
  if (options_.control_mode != ModelControlMode::kExplicit) {
    return absl::FailedPreconditionError(
        "models are loaded and unloaded only in explicit model control mode; start cnnserve "
        "with --model_control_mode=explicit");
  }
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  std::error_code ec;
  if (!fs::is_directory(fs::path(options_.root) / name, ec)) {
    return absl::NotFoundError(absl::StrCat("the repository '", options_.root,
                                            "' has no model directory '", name, "'"));
  }
  absl::MutexLock ops(&ops_mu_);
  return Reconcile(name, /*force=*/true);
}

absl::Status ModelRepository::Unload(const std::string& name) {
  if (options_.control_mode != ModelControlMode::kExplicit) {
    return absl::FailedPreconditionError(
        "models are loaded and unloaded only in explicit model control mode; start cnnserve "
        "with --model_control_mode=explicit");
  }
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  absl::MutexLock ops(&ops_mu_);
  bool known = false;
  {
    absl::MutexLock lock(&mu_);
    known = models_.count(name) > 0;
  }
  std::error_code ec;
  if (!known && !fs::is_directory(fs::path(options_.root) / name, ec)) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  }
  UnloadLocked(name, /*forget=*/false);
  return absl::OkStatus();
}

absl::Status ModelRepository::Reconcile(const std::string& name, bool force) {
  const fs::path dir = fs::path(options_.root) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {  // removed from the repository
    UnloadLocked(name, /*forget=*/true);
    return absl::NotFoundError(absl::StrCat("the repository has no model '", name, "'"));
  }
  const std::string model_fp = ModelFingerprint(dir);
  std::map<int64_t, std::shared_ptr<ServedModel>> current;
  std::map<int64_t, ModelState::Failure> failed_before;
  {
    absl::MutexLock lock(&mu_);
    ModelState& st = models_[name];
    if (!force && !st.wanted) return absl::OkStatus();  // unloaded on purpose
    if (!force && !st.error.empty() && st.error_fingerprint == model_fp) {
      return absl::InvalidArgumentError(st.error);  // unchanged since it failed
    }
    st.wanted = true;
    current = st.ready;
    failed_before = st.failed;
    if (current.empty()) st.loading = true;
  }
  NotifyReadiness(name);
  auto set_error = [&](const std::string& error) {
    {
      absl::MutexLock lock(&mu_);
      ModelState& st = models_[name];
      st.error = error;
      st.error_fingerprint = model_fp;
      st.loading = false;
    }
    Log(Severity::kError, "model failed to load", {{"model", name}, {"reason", error}});
    NotifyReadiness(name);
  };

  absl::StatusOr<v1::ModelConfig> config = ReadModelConfig(dir.string(), name, options_.defaults);
  if (!config.ok()) {
    set_error(std::string(config.status().message()));
    return config.status();
  }
  auto [picked, missing] = PickVersions(VersionsOnDisk(dir, *config), config->version_policy());
  if (picked.empty() && missing.empty()) {
    const std::string error = absl::StrCat("model '", name, "' has no version directory <n>/model.onnx under ",
                                           dir.string());
    set_error(error);
    std::vector<std::shared_ptr<ServedModel>> retired;
    for (auto& [v, m] : current) retired.push_back(m);
    {
      absl::MutexLock lock(&mu_);
      models_[name].ready.clear();
    }
    Retire(std::move(retired));
    NotifyReadiness(name);
    return absl::NotFoundError(error);
  }

  std::map<int64_t, std::shared_ptr<ServedModel>> ready;
  std::map<int64_t, ModelState::Failure> failed;
  absl::Status first_error;
  for (int64_t v : picked) {
    const std::string fp = model_fp + Stamp(dir / std::to_string(v) / "model.onnx");
    auto old = current.find(v);
    if (old != current.end() && old->second->fingerprint == fp) {
      ready[v] = old->second;
      continue;
    }
    auto before = failed_before.find(v);
    if (!force && before != failed_before.end() && before->second.fingerprint == fp) {
      failed[v] = before->second;  // unchanged since it failed: do not retry on every poll
      if (old != current.end()) ready[v] = old->second;
      continue;
    }
    const std::string version = std::to_string(v);
    Log(Severity::kInfo, "model loading", {{"model", name}, {"version", version}});
    const absl::Time start = absl::Now();
    LoadSpec spec{dir.string(), name, v, *config, fp, options_.metrics, options_.clock,
                  options_.max_image_pixels, options_.autotune_budget};
    // On a thread of its own, as the OpenMP threads that the load's warm-up
    // runs start must not outlive it (engine/fresh_thread.h).
    absl::StatusOr<std::shared_ptr<ServedModel>> loaded =
        engine::RunOnFreshThread([&] { return LoadServedModel(spec); });
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (loaded.ok()) {
      (*loaded)->metrics->load_duration->Set(seconds);
      ready[v] = *std::move(loaded);
      Log(Severity::kInfo, "model ready", {{"model", name}, {"version", version},
                                           {"load_seconds", absl::StrCat(seconds)},
                                           {"reload", old != current.end() ? "true" : "false"}});
      continue;
    }
    std::string reason = absl::StrCat("version ", v, " failed to load: ", loaded.status().message());
    if (old != current.end()) {
      ready[v] = old->second;
      absl::StrAppend(&reason, " (the previously loaded version ", v, " keeps serving)");
    }
    Log(Severity::kError, "model failed to load", {{"model", name}, {"version", version},
                                                   {"reason", reason}});
    if (old == current.end()) {
      options_.metrics->ForModel(name, version, config->max_batch_size())->ready->Set(0);
    }
    failed[v] = {reason, fp};
    if (first_error.ok()) {
      first_error = absl::Status(loaded.status().code(), absl::StrCat("model '", name, "' ", reason));
    }
  }
  for (int64_t v : missing) {
    failed[v] = {absl::StrCat("version_policy names version ", v, " but ", (dir / std::to_string(v)).string(),
                              " has no model"), model_fp};
    if (first_error.ok()) {
      first_error = absl::NotFoundError(absl::StrCat("model '", name, "' ", failed[v].reason));
    }
  }

  std::vector<std::shared_ptr<ServedModel>> retired;
  for (auto& [v, m] : current) {
    auto it = ready.find(v);
    if (it == ready.end() || it->second != m) retired.push_back(m);
  }
  {
    absl::MutexLock lock(&mu_);
    ModelState& st = models_[name];
    st.ready = ready;
    st.failed = failed;
    st.error.clear();
    st.loading = false;
  }
  NotifyReadiness(name);
  Retire(std::move(retired));
  for (auto& [v, m] : ready) m->metrics->ready->Set(1);
  return first_error;
}

void ModelRepository::Retire(std::vector<std::shared_ptr<ServedModel>> models) {
  for (std::shared_ptr<ServedModel>& m : models) {
    const absl::Time start = absl::Now();
    m->batcher->Stop();  // answers everything queued, then joins
    m->metrics->ready->Set(0);
    Log(Severity::kInfo, "model unloaded",
        {{"model", m->name}, {"version", absl::StrCat(m->version)},
         {"drain_seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - start))}});
  }
}

void ModelRepository::UnloadLocked(const std::string& name, bool forget) {
  std::vector<std::shared_ptr<ServedModel>> retired;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return;
    it->second.unloading = true;
    it->second.wanted = false;
    for (auto& [v, m] : it->second.ready) retired.push_back(m);
  }
  NotifyReadiness(name);
  if (!retired.empty()) Log(Severity::kInfo, "model unloading", {{"model", name}});
  Retire(retired);
  {
    absl::MutexLock lock(&mu_);
    if (forget) {
      models_.erase(name);
    } else {
      ModelState& st = models_[name];
      st = ModelState();
    }
  }
  NotifyReadiness(name);
}

void ModelRepository::NotifyReadiness(const std::string& name) {
  if (!options_.on_readiness) return;
  bool ready = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    ready = it != models_.end() && !it->second.unloading && !it->second.ready.empty();
  }
  options_.on_readiness(name, ready);
}

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelRepository::Find(
    const std::string& name, const std::string& version) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown model '", absl::CHexEscape(name), "'"));
  }
  const ModelState& st = it->second;
  if (st.unloading) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is being unloaded"));
  }
  int64_t v = 0;
  if (version.empty()) {
    if (!st.ready.empty()) return std::shared_ptr<const ServedModel>(st.ready.rbegin()->second);
  } else {
    if (!absl::SimpleAtoi(version, &v) || v < 1) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no version '",
                                              absl::CHexEscape(version),
                                              "'; versions are positive integers"));
    }
    auto r = st.ready.find(v);
    if (r != st.ready.end()) return std::shared_ptr<const ServedModel>(r->second);
  }
  if (st.loading) return absl::UnavailableError(absl::StrCat("model '", name, "' is loading"));
  if (!st.error.empty()) return absl::UnavailableError(st.error);
  if (version.empty() && !st.failed.empty()) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' ", st.failed.begin()->second.reason));
  }
  if (!version.empty() && st.failed.count(v)) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' ", st.failed.at(v).reason));
  }
  if (!st.wanted) {
    return absl::UnavailableError(absl::StrCat(
        "model '", name, "' is not loaded; load it with RepositoryModelLoad"));
  }
  std::vector<std::string> served;
  for (const auto& [rv, m] : st.ready) served.push_back(std::to_string(rv));
  return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version,
                                          " loaded (ready: ", absl::StrJoin(served, ", "), ")"));
}

std::vector<ModelRepository::IndexEntry> ModelRepository::Index(bool ready_only) const {
  std::set<std::string> names;
  for (const std::string& name : ModelDirs()) names.insert(name);
  std::vector<IndexEntry> index;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, st] : models_) names.insert(name);
  for (const std::string& name : names) {
    auto it = models_.find(name);
    if (it == models_.end()) {
      if (!ready_only) index.push_back({name, "", "UNAVAILABLE", "not loaded"});
      continue;
    }
    const ModelState& st = it->second;
    std::set<int64_t> versions;
    for (const auto& [v, m] : st.ready) versions.insert(v);
    for (const auto& [v, f] : st.failed) versions.insert(v);
    for (int64_t v : versions) {
      const bool ready = st.ready.count(v) > 0;
      if (ready_only && (!ready || st.unloading)) continue;
      std::string state = st.unloading ? "UNLOADING" : ready ? "READY" : "UNAVAILABLE";
      std::string reason = st.failed.count(v) ? st.failed.at(v).reason : "";
      if (reason.empty() && !st.error.empty()) {
        reason = st.error + " (the version loaded before keeps serving)";
      }
      index.push_back({name, std::to_string(v), state, reason});
    }
    if (versions.empty() && !ready_only) {
      const std::string reason = !st.error.empty() ? st.error : st.wanted ? "" : "unloaded";
      index.push_back({name, "", st.loading ? "LOADING" : "UNAVAILABLE", reason});
    }
  }
  return index;
}

bool ModelRepository::AllReady() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, st] : models_) {
    if (st.loading || st.unloading) return false;
    if (st.wanted && st.ready.empty()) return false;
  }
  return true;
}

}  // namespace cnnserve::server
