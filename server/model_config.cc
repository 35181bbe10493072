#include "server/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/zoo.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace cnnserve::server {
namespace {

namespace pb = google::protobuf;

constexpr int64_t kMaxBatchSizeLimit = 4096;
constexpr int kMaxInstances = 64;

class CollectFirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Turns a field path into the line it was written on, for error messages.
class Locator {
 public:
  Locator(const pb::TextFormat::ParseInfoTree* tree, std::string path)
      : tree_(tree), path_(std::move(path)) {}

  // `fields`: (field name, index) from the top message down; index -1 for
  // a singular field.
  absl::Status Error(std::initializer_list<std::pair<const char*, int>> fields,
                     const std::string& reason) const {
    const pb::Descriptor* message = v1::ModelConfig::descriptor();
    const pb::TextFormat::ParseInfoTree* tree = tree_;
    int line = -1;
    for (const auto& [name, index] : fields) {
      const pb::FieldDescriptor* field = message ? message->FindFieldByName(name) : nullptr;
      if (field == nullptr || tree == nullptr) break;
      const int i = field->is_repeated() ? std::max(index, 0) : -1;  // protobuf insists
      pb::TextFormat::ParseLocation loc = tree->GetLocation(field, i);
      // Values given as a list [a, b] share the location of the first.
      if (loc.line < 0 && i > 0) loc = tree->GetLocation(field, 0);
      if (loc.line >= 0) line = loc.line;
      tree = field->message_type() ? tree->GetTreeForNested(field, i) : nullptr;
      message = field->message_type();
    }
    std::vector<std::string> names;
    for (const auto& [name, index] : fields) {
      names.push_back(index >= 0 ? absl::StrCat(name, "[", index, "]") : name);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path_, line >= 0 ? absl::StrCat(":", line + 1) : "", ": ", absl::StrJoin(names, "."),
        ": ", reason));
  }

 private:
  const pb::TextFormat::ParseInfoTree* tree_;
  std::string path_;
};

absl::Status CheckAndComplete(const Locator& at, const std::string& model_name,
                              const ConfigDefaults& defaults, v1::ModelConfig* c) {
  if (!c->name().empty() && c->name() != model_name) {
    return at.Error({{"name", -1}}, absl::StrCat("is '", c->name(), "' but the model's directory is '",
                                               model_name, "'; they must match"));
  }
  if (c->platform().empty()) c->set_platform(c->zoo().empty() ? "onnx" : "zoo");
  if (c->platform() != "onnx" && c->platform() != "zoo") {
    return at.Error({{"platform", -1}},
                    absl::StrCat("'", c->platform(), "' is not one of \"onnx\" or \"zoo\""));
  }
  if (c->platform() == "zoo") {
    std::vector<std::string> known = engine::ZooModels();
    for (std::string& k : known) k = k.substr(4);  // drop "zoo:"
    if (std::find(known.begin(), known.end(), c->zoo()) == known.end()) {
      return at.Error({{c->zoo().empty() ? "platform" : "zoo", -1}},
                      absl::StrCat(c->zoo().empty() ? "platform \"zoo\" needs a zoo name"
                                                    : "'" + c->zoo() + "' is not a zoo model",
                                   "; expected one of ", absl::StrJoin(known, ", ")));
    }
  } else if (!c->zoo().empty()) {
    return at.Error({{"zoo", -1}}, "is only for platform \"zoo\"");
  }
  if (c->max_batch_size() < 0 || c->max_batch_size() > kMaxBatchSizeLimit) {
    return at.Error({{"max_batch_size", -1}}, absl::StrCat("is ", c->max_batch_size(),
                                                           "; expected 1 to ", kMaxBatchSizeLimit,
                                                           " (0 for the default)"));
  }
  if (c->max_batch_size() == 0) c->set_max_batch_size(defaults.max_batch_size);
  const int64_t max_batch = c->max_batch_size();

  const v1::ImagePreprocessing& in = c->input();
  if (in.resize_shorter() < 0 || in.center_crop() < 0) {
    return at.Error({{"input", -1}}, "resize_shorter and center_crop must not be negative");
  }
  if (in.resize_shorter() > 0 && in.center_crop() > in.resize_shorter()) {
    return at.Error({{"input", -1}, {"center_crop", -1}},
                    absl::StrCat("is ", in.center_crop(), ", larger than resize_shorter ",
                                 in.resize_shorter()));
  }
  if (in.scale() < 0) return at.Error({{"input", -1}, {"scale", -1}}, "must not be negative");
  if (in.mean_size() != 0 && in.mean_size() != 1 && in.mean_size() != 3) {
    return at.Error({{"input", -1}, {"mean", 0}},
                    absl::StrCat("has ", in.mean_size(), " values; expected one per channel"));
  }
  if (in.std_size() != 0 && in.std_size() != 1 && in.std_size() != 3) {
    return at.Error({{"input", -1}, {"std", 0}},
                    absl::StrCat("has ", in.std_size(), " values; expected one per channel"));
  }
  for (int i = 0; i < in.std_size(); ++i) {
    if (!(in.std(i) > 0)) return at.Error({{"input", -1}, {"std", i}}, "must be positive");
  }
  if (in.scale() == 0) c->mutable_input()->set_scale(1.0f / 255.0f);

  v1::DynamicBatching* db = c->mutable_dynamic_batching();
  if (db->max_queue_delay_micros() < 0 || db->max_queue_delay_micros() > 10'000'000) {
    return at.Error({{"dynamic_batching", -1}, {"max_queue_delay_micros", -1}},
                    absl::StrCat("is ", db->max_queue_delay_micros(), "; expected 0 to 10000000"));
  }
  for (int i = 0; i < db->preferred_batch_size_size(); ++i) {
    const int64_t p = db->preferred_batch_size(i);
    if (p < 1 || p > max_batch) {
      return at.Error({{"dynamic_batching", -1}, {"preferred_batch_size", i}},
                      absl::StrCat("is ", p, "; expected 1 to max_batch_size ", max_batch));
    }
  }
  if (db->max_queue_size() < 0) {
    return at.Error({{"dynamic_batching", -1}, {"max_queue_size", -1}}, "must not be negative");
  }
  if (db->max_queue_size() == 0) db->set_max_queue_size(defaults.max_queue_size);
  if (db->default_timeout_micros() < 0) {
    return at.Error({{"dynamic_batching", -1}, {"default_timeout_micros", -1}},
                    "must not be negative");
  }
  if (db->latency_slo_micros() < 0 || db->latency_slo_micros() > 60'000'000) {
    return at.Error({{"dynamic_batching", -1}, {"latency_slo_micros", -1}},
                    absl::StrCat("is ", db->latency_slo_micros(), "; expected 0 (off) to 60000000"));
  }
  if (db->latency_slo_micros() > 0 &&
      (db->max_queue_delay_micros() > 0 || db->preferred_batch_size_size() > 0)) {
    return at.Error({{"dynamic_batching", -1}, {"latency_slo_micros", -1}},
                    "replaces max_queue_delay_micros and preferred_batch_size (the scheduler "
                    "then sizes and times batches itself); set one or the other");
  }

  if (c->instance_group_size() == 0) c->add_instance_group();
  int instances = 0;
  for (int i = 0; i < c->instance_group_size(); ++i) {
    v1::InstanceGroup* g = c->mutable_instance_group(i);
    if (g->count() < 0 || g->threads() < 0) {
      return at.Error({{"instance_group", i}}, "count and threads must not be negative");
    }
    if (!g->has_count()) g->set_count(1);
    if (g->count() == 0 && (c->instance_group_size() > 1 || g->threads() > 0)) {
      return at.Error({{"instance_group", i}, {"count", -1}},
                      "0 (auto) picks instances and threads itself: it must be the only "
                      "instance_group and leave threads unset");
    }
    instances += std::max(1, g->count());
  }
  if (instances > kMaxInstances) {
    return at.Error({{"instance_group", 0}}, absl::StrCat("asks for ", instances,
                                                          " instances; at most ", kMaxInstances));
  }

  v1::VersionPolicy* vp = c->mutable_version_policy();
  if (vp->policy_choice_case() == v1::VersionPolicy::POLICY_CHOICE_NOT_SET) {
    vp->mutable_latest()->set_num_versions(1);
  }
  if (vp->has_latest() && vp->latest().num_versions() < 1) {
    return at.Error({{"version_policy", -1}, {"latest", -1}}, "num_versions must be at least 1");
  }
  if (vp->has_specific()) {
    if (vp->specific().versions_size() == 0) {
      return at.Error({{"version_policy", -1}, {"specific", -1}}, "lists no versions");
    }
    for (int64_t v : vp->specific().versions()) {
      if (v < 1) {
        return at.Error({{"version_policy", -1}, {"specific", -1}},
                        absl::StrCat("version ", v, " is not a positive integer"));
      }
    }
  }

  if (c->warmup().batch_size_size() == 0) c->mutable_warmup()->add_batch_size(1);
  for (int i = 0; i < c->warmup().batch_size_size(); ++i) {
    const int64_t b = c->warmup().batch_size(i);
    if (b < 1 || b > max_batch) {
      return at.Error({{"warmup", -1}, {"batch_size", i}},
                      absl::StrCat("is ", b, "; expected 1 to max_batch_size ", max_batch));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ModelConfig> ParseModelConfig(const std::string& text, const std::string& path,
                                                 const std::string& model_name,
                                                 const ConfigDefaults& defaults) {
  v1::ModelConfig config;
  pb::TextFormat::Parser parser;
  CollectFirstError errors;
  pb::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", errors.error().empty() ? " cannot be parsed" : errors.error(),
        " (expected protobuf text format of cnnserve.v1.ModelConfig, see "
        "proto/cnnserve/v1/model_config.proto)"));
  }
  const Locator at(&tree, path);
  if (absl::Status s = CheckAndComplete(at, model_name, defaults, &config); !s.ok()) return s;
  return config;
}

absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& model_dir,
                                                const std::string& model_name,
                                                const ConfigDefaults& defaults) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "config.pbtxt";
  std::string text;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    if (!in) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": cannot be read"));
    text = contents.str();
  }
  return ParseModelConfig(text, path.string(), model_name, defaults);
}

}  // namespace cnnserve::server
