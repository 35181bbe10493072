// libFuzzer target: arbitrary bytes as an ONNX model through the importer
// and the graph passes. Any crash, leak or sanitizer report is a finding;
// an error Status is the expected answer to garbage.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/graph.h"
#include "engine/onnx_import.h"
#include "engine/passes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto graph = cnnserve::engine::ImportOnnx(std::string_view(reinterpret_cast<const char*>(data), size));
  if (graph.ok() && cnnserve::engine::ValidateGraph(*graph).ok()) {
    cnnserve::engine::OptimizeGraph(*graph).IgnoreError();
  }
  return 0;
}
