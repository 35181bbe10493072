// Image decoding and preprocessing for classifiers: JPEG (libjpeg-turbo) and
// PNG (libspng) to 8-bit pixels, resizing, and conversion to the float CHW
// tensor a model takes. No oneDNN, no gRPC: the server and the client share it.
//
// All functions are thread-safe (no shared state). Errors are
// INVALID_ARGUMENT with a message saying what was wrong with the image;
// images larger than the limits are refused from their header, before any
// pixel memory is allocated.
#ifndef CNNSERVE_ENGINE_IMAGE_IMAGE_H_
#define CNNSERVE_ENGINE_IMAGE_IMAGE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cnnserve::image {

// 8-bit pixels, row-major, channels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (grayscale) or 3 (RGB)
  std::vector<uint8_t> pixels;
};

struct DecodeOptions {
  int channels = 3;              // 1: grayscale (luma), 3: RGB; alpha is dropped
  int64_t max_pixels = 64 << 20;  // width * height
  int max_side = 16384;
  // JPEG only: decode at the smallest DCT scale (1/8 to 1) whose image is
  // still at least this large, which is much faster for big photos. 0: any.
  int min_width = 0;
  int min_height = 0;
  int min_shorter_side = 0;
};

// Decodes a JPEG or PNG file held in memory; the format is told by its signature.
absl::StatusOr<Image> DecodeImage(std::string_view bytes, const DecodeOptions& options);

// Nearest-neighbour resize: destination pixel (x, y) takes source pixel
// (floor(x * w / W), floor(y * h / H)), as PyTorch's interpolate(mode="nearest").
Image ResizeNearest(const Image& src, int width, int height);

// Bilinear resize (pixel centres aligned, as PIL and torchvision with
// antialias=True): when shrinking, the triangle filter widens with the
// scale so that every source pixel contributes (antialiasing).
Image ResizeBilinear(const Image& src, int width, int height);

// The window [x0, x0 + w) x [y0, y0 + h) of ResizeBilinear(src, width,
// height), computed without the rest: a centre crop after a resize costs
// only what it keeps, however extreme the aspect ratio.
Image ResizeBilinearWindow(const Image& src, int width, int height, int x0, int y0, int w, int h);

// The centre width x height window; INVALID_ARGUMENT if the image is smaller.
absl::StatusOr<Image> CenterCrop(const Image& src, int width, int height);

// Scales to [0, 1] and lays out planar CHW, appending to `out`.
void AppendChwFloat(const Image& image, std::vector<float>* out);

}  // namespace cnnserve::image

#endif  // CNNSERVE_ENGINE_IMAGE_IMAGE_H_
