// libFuzzer target: arbitrary bytes as a serialized KServe ModelInferRequest
// through the server's request-to-tensor conversion (FP32 and BYTES image
// inputs) and requested-output resolution, for the digits model's shapes.
#include <cstddef>
#include <cstdint>

#include "engine/graph.h"
#include "google/protobuf/stubs/logging.h"
#include "grpc_predict_v2.pb.h"
#include "server/tensor_codec.h"

// Invalid UTF-8 in string fields is a parse failure protobuf also logs;
// the log would drown the fuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  cnnserve::engine::ValueInfo input;
  input.name = "input";
  input.shape = {-1, 1, 32, 32};
  cnnserve::engine::ValueInfo output;
  output.name = "logits";
  output.shape = {-1, 10};
  cnnserve::image::PreprocessSpec images;
  images.width = images.height = 32;
  images.channels = 1;
  images.max_pixels = 4 << 20;
  auto decoded = cnnserve::server::DecodeInferInput(request, input, &images);
  // An accepted request holds exactly its items' worth of floats.
  if (decoded.ok() && decoded->data.size() != static_cast<size_t>(decoded->items) * 32 * 32) {
    __builtin_trap();
  }
  cnnserve::server::ResolveRequestedOutputs(request, {output}).IgnoreError();
  return 0;
}
