// Image preprocessing for a classifier: an encoded JPEG or PNG in, the
// model's float CHW input for one item out. The server runs it for BYTES
// inputs and the Classify API; what it does is set by the model's config.
//
// Steps: decode (JPEG at the smallest DCT scale that still covers the
// target), resize (straight to the model's size, or the shorter side to
// resize_shorter keeping the aspect ratio), centre crop to the model's size
// when needed, then value = (pixel * scale - mean[c]) / std[c], channels in
// RGB, BGR or gray order. Thread-safe; INVALID_ARGUMENT for a bad image.
#ifndef CNNSERVE_ENGINE_IMAGE_PREPROCESS_H_
#define CNNSERVE_ENGINE_IMAGE_PREPROCESS_H_

#include <array>
#include <string_view>

#include "absl/status/status.h"
#include "engine/image/image.h"

namespace cnnserve::image {

struct PreprocessSpec {
  int width = 0;     // the model's input W
  int height = 0;    // the model's input H
  int channels = 3;  // 1 (gray) or 3
  bool bgr = false;  // channel order for 3 channels
  // > 0: resize the shorter side to this, then centre-crop width x height.
  int resize_shorter = 0;
  // With resize_shorter 0: true crops the centre width x height from the
  // decoded image, false resizes it straight to width x height.
  bool crop_only = false;
  bool nearest = false;  // nearest-neighbour instead of bilinear resizing
  float scale = 1.0f / 255.0f;
  std::array<float, 3> mean = {0, 0, 0};
  std::array<float, 3> std = {1, 1, 1};
  int64_t max_pixels = 64 << 20;  // decompression-bomb guard, from the header
  int max_side = 16384;
};

// Writes channels x height x width floats to `out`.
absl::Status DecodeAndPreprocess(std::string_view bytes, const PreprocessSpec& spec, float* out);

}  // namespace cnnserve::image

#endif  // CNNSERVE_ENGINE_IMAGE_PREPROCESS_H_
