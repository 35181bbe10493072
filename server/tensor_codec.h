// Conversion between KServe v2 ModelInfer messages and engine tensors: the
// one place that knows both the wire format and the engine's shapes.
//
// Errors are INVALID_ARGUMENT with a message naming the input or output and
// saying what was expected, e.g. "input 'input' has shape [1,3,32,32], model
// expects [N,1,32,32]".
#ifndef CNNSERVE_SERVER_TENSOR_CODEC_H_
#define CNNSERVE_SERVER_TENSOR_CODEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/image/preprocess.h"
#include "engine/tensor.h"
#include "grpc_predict_v2.pb.h"

namespace cnnserve::server {

struct DecodedInput {
  int64_t items = 0;
  std::vector<float> data;  // row-major, items x per-item shape
  // With DecodeInferInput's defer_images, for a BYTES input: one encoded
  // image per item (views into the request), `data` left empty.
  std::vector<std::string_view> images;
  std::string name;  // the input's name, for DecodeImageItem's errors
};

// Validates the request's one input against `input` (dimension 0 free).
// FP32 is copied out of raw_input_contents or the typed fp32_contents.
// BYTES (only when `images` is given: the model takes images) has shape [N]
// or [N, 1], each element an encoded JPEG or PNG file (raw: each prefixed by
// its 4-byte little-endian length, as KServe and Triton send BYTES), and is
// decoded and preprocessed per `images` -- or, with `defer_images`, only
// split into `images` for DecodeImageItem to decode later.
absl::StatusOr<DecodedInput> DecodeInferInput(const inference::ModelInferRequest& request,
                                              const engine::ValueInfo& input,
                                              const image::PreprocessSpec* images = nullptr,
                                              bool defer_images = false);

// Decodes and preprocesses in.images[item] into `out` (one item of the
// model's input); INVALID_ARGUMENT naming the input and the image.
absl::Status DecodeImageItem(const DecodedInput& in, int64_t item, const image::PreprocessSpec& spec,
                             float* out);

// Splits a raw BYTES tensor into its length-prefixed elements.
absl::StatusOr<std::vector<std::string_view>> SplitRawBytes(const std::string& raw,
                                                            const std::string& input_name);

// One output the request asked for: which model output, and k > 0 when it
// asked for the classification extension.
struct RequestedOutput {
  size_t index = 0;  // into the model's outputs
  std::string name;
  int64_t classification = 0;
};

// Checks the requested outputs against the model's (all of them when the
// request names none); run before inference so a bad request costs nothing.
absl::StatusOr<std::vector<RequestedOutput>> ResolveRequestedOutputs(
    const inference::ModelInferRequest& request, const std::vector<engine::ValueInfo>& declared);

// Fills `response` with the outputs the request asked for (all when it named
// none), as FP32 raw_output_contents, or, for an output requested with the
// int64 parameter "classification" = k, as a BYTES tensor [N, k] of
// "score:index[:label]" strings, best first (the classification extension).
absl::Status EncodeInferOutputs(const inference::ModelInferRequest& request,
                                const std::vector<engine::ValueInfo>& declared,
                                const std::vector<engine::Tensor>& outputs,
                                const std::vector<std::string>& labels,
                                inference::ModelInferResponse* response);

}  // namespace cnnserve::server

#endif  // CNNSERVE_SERVER_TENSOR_CODEC_H_
