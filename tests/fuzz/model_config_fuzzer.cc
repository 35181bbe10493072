// libFuzzer target: arbitrary text as a config.pbtxt through the parser,
// the checks and the defaults, including the line lookup for errors.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cnnserve::server::ParseModelConfig(text, "fuzz/config.pbtxt", "m", cnnserve::server::ConfigDefaults())
      .IgnoreError();
  return 0;
}
