#include "client/classify.h"

#include <glob.h>

#include <algorithm>
#include <iostream>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/grpc_error.h"
#include "engine/image/image.h"
#include "engine/status_macros.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace cnnserve::client {
namespace fs = std::filesystem;
namespace {

bool IsImageFile(const fs::path& p) {
  const std::string ext = absl::AsciiStrToLower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ModelShape {
  std::string input;
  std::string output;
  int channels = 0, height = 0, width = 0;
  int64_t classes = 0;
  bool takes_images = false;  // the server decodes BYTES images for this input
};

absl::StatusOr<ModelShape> FetchModelShape(inference::GRPCInferenceService::Stub& stub,
                                           const ClassifyOptions& options) {
  inference::ModelMetadataRequest request;
  request.set_name(options.model);
  request.set_version(options.version);
  inference::ModelMetadataResponse meta;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  RETURN_IF_ERROR(FromGrpc("ModelMetadata", stub.ModelMetadata(&context, request, &meta)));
  if (meta.inputs_size() != 1 || meta.inputs(0).shape_size() != 4 || meta.outputs_size() < 1 ||
      meta.outputs(0).shape_size() != 2) {
    return absl::FailedPreconditionError(
        "model '" + options.model + "' is not an image classifier: classify needs one [N,C,H,W] "
        "input and an [N,classes] output");
  }
  const auto& in = meta.inputs(0).shape();
  ModelShape shape{meta.inputs(0).name(), meta.outputs(0).name(), static_cast<int>(in[1]),
                   static_cast<int>(in[2]), static_cast<int>(in[3]), meta.outputs(0).shape(1)};
  auto image_type = meta.inputs(0).parameters().find("image_datatype");
  shape.takes_images = image_type != meta.inputs(0).parameters().end() &&
                       image_type->second.string_param() == "BYTES";
  if (shape.channels != 1 && shape.channels != 3) {
    return absl::FailedPreconditionError(
        absl::StrCat("model input has ", shape.channels, " channels; images give 1 or 3"));
  }
  return shape;
}

// JSON string literal with the characters JSON requires escaped.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void Print(const std::string& path, const std::vector<ClassScore>& top, bool json,
           std::ostream& out) {
  if (json) {
    out << "{\"image\":" << JsonString(path) << ",\"top\":[";
    for (size_t i = 0; i < top.size(); ++i) {
      out << (i ? "," : "") << "{\"index\":" << top[i].index
          << ",\"label\":" << JsonString(top[i].label) << ",\"score\":" << top[i].score << "}";
    }
    out << "]}\n";
    return;
  }
  out << path << "\n";
  for (size_t i = 0; i < top.size(); ++i) {
    out << absl::StrFormat("  %d. %-20s %.4f\n", i + 1,
                           top[i].label.empty() ? absl::StrCat(top[i].index) : top[i].label,
                           top[i].score);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandImagePaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p, ec)) {
        if (e.is_regular_file() && IsImageFile(e.path())) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      files.push_back(p);
    } else if (p.find_first_of("*?[") != std::string::npos) {
      // A pattern the shell did not expand (quoted, or from a script).
      glob_t matches;
      const int rc = glob(p.c_str(), 0, nullptr, &matches);
      std::vector<std::string> found;
      for (size_t i = 0; rc == 0 && i < matches.gl_pathc; ++i) {
        if (IsImageFile(matches.gl_pathv[i])) found.push_back(matches.gl_pathv[i]);
      }
      globfree(&matches);
      if (found.empty()) return absl::NotFoundError("no image matches '" + p + "'");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      return absl::NotFoundError("no such file or directory: '" + p + "'");
    }
  }
  if (files.empty()) return absl::InvalidArgumentError("no images given");
  return files;
}

absl::StatusOr<std::vector<ClassScore>> TopClasses(const std::vector<std::string>& entries, int k) {
  std::vector<ClassScore> all;
  for (const std::string& e : entries) {
    std::vector<std::string> parts = absl::StrSplit(e, absl::MaxSplits(':', 2));
    ClassScore c;
    if (parts.size() < 2 || !absl::SimpleAtof(parts[0], &c.score) ||
        !absl::SimpleAtoi(parts[1], &c.index)) {
      return absl::DataLossError("malformed classification entry '" + e + "'");
    }
    if (parts.size() == 3) c.label = parts[2];
    all.push_back(std::move(c));
  }
  if (all.empty()) return all;
  float sum = 0, max = all[0].score;
  bool distribution = true;
  for (const ClassScore& c : all) {
    sum += c.score;
    max = std::max(max, c.score);
    distribution = distribution && c.score >= 0;
  }
  if (!distribution || std::fabs(sum - 1.0f) > 1e-3f) {
    float total = 0;
    for (ClassScore& c : all) total += (c.score = std::exp(c.score - max));
    for (ClassScore& c : all) c.score /= total;
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const ClassScore& a, const ClassScore& b) { return a.score > b.score; });
  all.resize(std::min<size_t>(all.size(), std::max(k, 1)));
  return all;
}

absl::Status Classify(const std::shared_ptr<grpc::Channel>& channel,
                      const ClassifyOptions& options, std::ostream& out) {
  if (options.model.empty()) return absl::InvalidArgumentError("--model is required");
  if (options.batch < 1) return absl::InvalidArgumentError("--batch must be at least 1");
  ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandImagePaths(options.paths));
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  ASSIGN_OR_RETURN(ModelShape shape, FetchModelShape(*stub, options));

  // Servers that do not decode images (other KServe servers) get tensors.
  const bool raw = options.raw || !shape.takes_images;
  if (!options.raw && raw) {
    std::cerr << "note: the server does not take encoded images for '" << options.model
              << "'; preprocessing on the client (as --raw)\n";
  }
  image::DecodeOptions decode;
  decode.channels = shape.channels;
  for (size_t first = 0; first < files.size(); first += options.batch) {
    const size_t n = std::min<size_t>(options.batch, files.size() - first);
    inference::ModelInferRequest request;
    request.set_model_name(options.model);
    request.set_model_version(options.version);
    auto* input = request.add_inputs();
    input->set_name(shape.input);
    if (raw) {
      std::vector<float> data;
      for (size_t i = first; i < first + n; ++i) {
        ASSIGN_OR_RETURN(std::string bytes, ReadFile(files[i]));
        absl::StatusOr<image::Image> img = image::DecodeImage(bytes, decode);
        if (!img.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(files[i], ": ", img.status().message()));
        }
        image::AppendChwFloat(image::ResizeNearest(*img, shape.width, shape.height), &data);
      }
      input->set_datatype("FP32");
      for (int64_t d : {static_cast<int64_t>(n), int64_t{shape.channels}, int64_t{shape.height},
                        int64_t{shape.width}}) {
        input->add_shape(d);
      }
      request.add_raw_input_contents(
          std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
    } else {
      // The files as they are; the server decodes and preprocesses them as
      // the model's config says.
      input->set_datatype("BYTES");
      input->add_shape(static_cast<int64_t>(n));
      for (size_t i = first; i < first + n; ++i) {
        ASSIGN_OR_RETURN(std::string bytes, ReadFile(files[i]));
        input->mutable_contents()->add_bytes_contents(std::move(bytes));
      }
    }
    // Every class comes back, so the client can turn scores into probabilities.
    auto* output = request.add_outputs();
    output->set_name(shape.output);
    (*output->mutable_parameters())["classification"].set_int64_param(shape.classes);

    inference::ModelInferResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    RETURN_IF_ERROR(FromGrpc("ModelInfer", stub->ModelInfer(&context, request, &response)));
    if (response.outputs_size() != 1 ||
        response.outputs(0).contents().bytes_contents_size() != static_cast<int>(n * shape.classes)) {
      return absl::DataLossError("ModelInfer: the response does not hold one classification per image");
    }
    const auto& entries = response.outputs(0).contents().bytes_contents();
    for (size_t i = 0; i < n; ++i) {
      std::vector<std::string> mine(entries.begin() + i * shape.classes,
                                    entries.begin() + (i + 1) * shape.classes);
      ASSIGN_OR_RETURN(std::vector<ClassScore> top, TopClasses(mine, options.top_k));
      Print(files[first + i], top, options.json, out);
    }
  }
  return absl::OkStatus();
}

}  // namespace cnnserve::client
