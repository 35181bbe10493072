#include "server/tensor_codec.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace cnnserve::server {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// Reads an optional "classification" parameter: 0 when absent.
absl::StatusOr<int64_t> ClassificationCount(
    const ModelInferRequest::InferRequestedOutputTensor& requested, int64_t classes) {
  auto it = requested.parameters().find("classification");
  if (it == requested.parameters().end()) return 0;
  if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param) {
    return Invalid("output '" + requested.name() +
                   "': parameter 'classification' must be an int64");
  }
  const int64_t k = it->second.int64_param();
  if (k <= 0) {
    return Invalid(absl::StrCat("output '", requested.name(), "': classification must be positive, got ", k));
  }
  return std::min(k, classes);
}

void AppendClassification(const engine::Tensor& out, int64_t k,
                          const std::vector<std::string>& labels,
                          ModelInferResponse::InferOutputTensor* tensor) {
  const int64_t items = out.shape[0];
  const int64_t classes = engine::ItemElements(out.shape);
  std::vector<int64_t> order(classes);
  auto* contents = tensor->mutable_contents();
  for (int64_t i = 0; i < items; ++i) {
    const float* scores = out.data.data() + i * classes;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [scores](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    for (int64_t r = 0; r < k; ++r) {
      const int64_t c = order[r];
      std::string s = absl::StrCat(scores[c], ":", c);
      if (c < static_cast<int64_t>(labels.size())) absl::StrAppend(&s, ":", labels[c]);
      contents->add_bytes_contents(std::move(s));
    }
  }
  tensor->set_datatype("BYTES");
  tensor->add_shape(items);
  tensor->add_shape(k);
}

}  // namespace

absl::StatusOr<std::vector<std::string_view>> SplitRawBytes(const std::string& raw,
                                                            const std::string& input_name) {
  std::vector<std::string_view> elements;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return Invalid(absl::StrCat("input '", input_name, "' raw BYTES content is truncated at byte ",
                                  pos, ": each element needs a 4-byte little-endian length prefix"));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data() + pos);
    const uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24);
    pos += 4;
    if (len > raw.size() - pos) {
      return Invalid(absl::StrCat("input '", input_name, "' raw BYTES element ", elements.size(),
                                  " claims ", len, " bytes but only ", raw.size() - pos, " remain"));
    }
    elements.emplace_back(raw.data() + pos, len);
    pos += len;
  }
  return elements;
}

namespace {

// Whether the one input comes in raw_input_contents (true) or in typed
// contents (false); an error when both are given or raw has other than 1.
absl::StatusOr<bool> UsesRawContents(const ModelInferRequest& request, bool has_typed) {
  const auto& in = request.inputs(0);
  if (request.raw_input_contents_size() > 0 && has_typed) {
    return Invalid("input '" + in.name() +
                   "' is given both in raw_input_contents and in contents; send one");
  }
  if (request.raw_input_contents_size() > 1) {
    return Invalid(absl::StrCat("raw_input_contents has ", request.raw_input_contents_size(),
                                " entries for 1 input"));
  }
  return request.raw_input_contents_size() == 1;
}

absl::StatusOr<DecodedInput> DecodeImageInput(const ModelInferRequest& request,
                                              const engine::ValueInfo& input,
                                              const image::PreprocessSpec& spec, bool defer) {
  const auto& in = request.inputs(0);
  engine::Shape shape(in.shape().begin(), in.shape().end());
  if (shape.empty() || shape.size() > 2 || shape[0] < 1 || (shape.size() == 2 && shape[1] != 1)) {
    return Invalid("input '" + in.name() + "' is BYTES of shape " + engine::ShapeToString(shape) +
                   "; images are sent as shape [N] or [N,1], one encoded JPEG or PNG per item");
  }
  std::vector<std::string_view> files;
  auto raw = UsesRawContents(request, in.has_contents() && in.contents().bytes_contents_size() > 0);
  if (!raw.ok()) return raw.status();
  if (*raw) {
    auto split = SplitRawBytes(request.raw_input_contents(0), in.name());
    if (!split.ok()) return split.status();
    files = *std::move(split);
  } else {
    for (const std::string& b : in.contents().bytes_contents()) files.emplace_back(b);
  }
  if (static_cast<int64_t>(files.size()) != shape[0]) {
    return Invalid(absl::StrCat("input '", in.name(), "' has shape ", engine::ShapeToString(shape),
                                " but carries ", files.size(), " images"));
  }
  DecodedInput out;
  out.items = shape[0];
  out.images = std::move(files);
  out.name = in.name();
  if (defer) return out;
  const int64_t per_item = engine::ItemElements(input.shape);
  out.data.resize(per_item * out.items);
  for (int64_t i = 0; i < out.items; ++i) {
    if (absl::Status s = DecodeImageItem(out, i, spec, out.data.data() + i * per_item); !s.ok()) {
      return s;
    }
  }
  out.images.clear();
  return out;
}

}  // namespace

absl::Status DecodeImageItem(const DecodedInput& in, int64_t item, const image::PreprocessSpec& spec,
                             float* out) {
  absl::Status s = image::DecodeAndPreprocess(in.images[item], spec, out);
  if (s.ok()) return s;
  return Invalid(absl::StrCat("input '", in.name, "' image ", item, ": ", s.message()));
}

absl::StatusOr<DecodedInput> DecodeInferInput(const ModelInferRequest& request,
                                              const engine::ValueInfo& input,
                                              const image::PreprocessSpec* images,
                                              bool defer_images) {
  if (request.inputs_size() != 1) {
    return Invalid(absl::StrCat("the model takes 1 input ('", input.name, "'), the request has ",
                                request.inputs_size()));
  }
  const auto& in = request.inputs(0);
  if (in.name() != input.name) {
    return Invalid("unknown input '" + in.name() + "'; the model's input is '" + input.name + "'");
  }
  if (in.datatype() == "BYTES" && images != nullptr) {
    return DecodeImageInput(request, input, *images, defer_images);
  }
  if (in.datatype() != "FP32") {
    return Invalid("input '" + in.name() + "' has datatype '" + in.datatype() + "'; the model expects FP32" +
                   (images != nullptr ? " or BYTES (encoded JPEG or PNG images)" : ""));
  }
  engine::Shape shape(in.shape().begin(), in.shape().end());
  bool fits = shape.size() == input.shape.size() && !shape.empty() && shape[0] >= 1;
  for (size_t i = 1; fits && i < shape.size(); ++i) fits = shape[i] == input.shape[i];
  if (!fits) {
    return Invalid("input '" + in.name() + "' has shape " + engine::ShapeToString(shape) +
                   ", model expects " + engine::ShapeToString(input.shape) + " with N >= 1");
  }
  DecodedInput out;
  out.items = shape[0];
  const int64_t count = engine::NumElements(shape);
  auto use_raw = UsesRawContents(request, in.has_contents() && in.contents().fp32_contents_size() > 0);
  if (!use_raw.ok()) return use_raw.status();
  if (*use_raw) {
    const std::string& raw = request.raw_input_contents(0);
    if (static_cast<int64_t>(raw.size()) != count * 4) {
      return Invalid(absl::StrCat("input '", in.name(), "' raw content is ", raw.size(),
                                  " bytes; shape ", engine::ShapeToString(shape), " of FP32 needs ",
                                  count * 4));
    }
    out.data.resize(count);
    std::memcpy(out.data.data(), raw.data(), raw.size());
  } else {
    if (in.contents().fp32_contents_size() != count) {
      return Invalid(absl::StrCat("input '", in.name(), "' has ", in.contents().fp32_contents_size(),
                                  " fp32_contents values; shape ", engine::ShapeToString(shape),
                                  " needs ", count));
    }
    out.data.assign(in.contents().fp32_contents().begin(), in.contents().fp32_contents().end());
  }
  return out;
}

absl::StatusOr<std::vector<RequestedOutput>> ResolveRequestedOutputs(
    const ModelInferRequest& request, const std::vector<engine::ValueInfo>& declared) {
  std::vector<RequestedOutput> resolved;
  if (request.outputs().empty()) {
    for (size_t i = 0; i < declared.size(); ++i) resolved.push_back({i, declared[i].name, 0});
    return resolved;
  }
  for (const auto& req : request.outputs()) {
    auto it = std::find_if(declared.begin(), declared.end(),
                           [&](const engine::ValueInfo& d) { return d.name == req.name(); });
    if (it == declared.end()) {
      std::string names;
      for (const auto& d : declared) absl::StrAppend(&names, names.empty() ? "" : ", ", "'", d.name, "'");
      return Invalid("unknown requested output '" + req.name() + "'; the model's outputs are " + names);
    }
    auto k = ClassificationCount(req, engine::ItemElements(it->shape));
    if (!k.ok()) return k.status();
    resolved.push_back({static_cast<size_t>(it - declared.begin()), req.name(), *k});
  }
  return resolved;
}

absl::Status EncodeInferOutputs(const ModelInferRequest& request,
                                const std::vector<engine::ValueInfo>& declared,
                                const std::vector<engine::Tensor>& outputs,
                                const std::vector<std::string>& labels,
                                ModelInferResponse* response) {
  auto wanted = ResolveRequestedOutputs(request, declared);
  if (!wanted.ok()) return wanted.status();
  std::vector<std::string> fp32_raw;
  for (const RequestedOutput& req : *wanted) {
    const engine::Tensor& out = outputs[req.index];
    auto* tensor = response->add_outputs();
    tensor->set_name(req.name);
    if (req.classification > 0) {
      AppendClassification(out, req.classification, labels, tensor);
      continue;
    }
    tensor->set_datatype("FP32");
    for (int64_t d : out.shape) tensor->add_shape(d);
    fp32_raw.emplace_back(reinterpret_cast<const char*>(out.data.data()), out.data.size() * 4);
    response->add_raw_output_contents();  // marks that raw contents are in use
  }
  // KServe: raw_output_contents is used for all outputs or for none. When an
  // FP32 output travels raw, classification outputs do too, serialized as
  // Triton does BYTES: a 4-byte little-endian length before each element.
  if (response->raw_output_contents_size() > 0) {
    response->clear_raw_output_contents();
    size_t fp32_index = 0;
    for (auto& tensor : *response->mutable_outputs()) {
      if (tensor.datatype() == "BYTES") {
        std::string raw;
        for (const std::string& s : tensor.contents().bytes_contents()) {
          const uint32_t n = s.size();
          raw.append(reinterpret_cast<const char*>(&n), 4);
          raw.append(s);
        }
        tensor.clear_contents();
        response->add_raw_output_contents(std::move(raw));
      } else {
        response->add_raw_output_contents(std::move(fp32_raw[fp32_index++]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace cnnserve::server
