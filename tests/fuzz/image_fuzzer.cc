// libFuzzer target: arbitrary bytes as an image through decode and
// preprocessing, for a gray 32x32 model (nearest) and an RGB 224x224 one
// (resize 256, centre crop, mean/std). Pixel limit 4 Mi so that a claimed
// huge image is refused from its header, as the server does.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/image/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  cnnserve::image::PreprocessSpec gray;
  gray.width = gray.height = 32;
  gray.channels = 1;
  gray.nearest = true;
  gray.max_pixels = 4 << 20;
  std::vector<float> out(3 * 224 * 224);
  cnnserve::image::DecodeAndPreprocess(bytes, gray, out.data()).IgnoreError();
  cnnserve::image::PreprocessSpec rgb;
  rgb.width = rgb.height = 224;
  rgb.resize_shorter = 256;
  rgb.mean = {0.485f, 0.456f, 0.406f};
  rgb.std = {0.229f, 0.224f, 0.225f};
  rgb.max_pixels = 4 << 20;
  cnnserve::image::DecodeAndPreprocess(bytes, rgb, out.data()).IgnoreError();
  return 0;
}
