#include "engine/image/preprocess.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cnnserve::image {

absl::Status DecodeAndPreprocess(std::string_view bytes, const PreprocessSpec& spec, float* out) {
  DecodeOptions decode;
  decode.channels = spec.channels;
  decode.max_pixels = spec.max_pixels;
  decode.max_side = spec.max_side;
  if (spec.resize_shorter > 0) {
    decode.min_shorter_side = spec.resize_shorter;
  } else if (!spec.crop_only) {
    decode.min_width = spec.width;
    decode.min_height = spec.height;
  } else {
    decode.min_width = decode.min_height = 1 << 30;  // crop needs full resolution
  }
  absl::StatusOr<Image> img = DecodeImage(bytes, decode);
  if (!img.ok()) return img.status();
  auto resize = [&spec](const Image& src, int w, int h) {
    return spec.nearest ? ResizeNearest(src, w, h) : ResizeBilinear(src, w, h);
  };
  Image sized;
  if (spec.resize_shorter > 0) {
    const bool wide = img->width >= img->height;
    const int shorter = wide ? img->height : img->width;
    const int longer = wide ? img->width : img->height;
    // torchvision's Resize(int): the longer side is truncated, not rounded.
    const int scaled = std::max(1, static_cast<int>(static_cast<int64_t>(spec.resize_shorter) *
                                                    longer / shorter));
    const int rw = wide ? scaled : spec.resize_shorter;
    const int rh = wide ? spec.resize_shorter : scaled;
    if (rw < spec.width || rh < spec.height) {
      return absl::InvalidArgumentError(absl::StrCat("image of ", img->width, "x", img->height,
                                                     " resized to ", rw, "x", rh, " is smaller than the ",
                                                     spec.width, "x", spec.height, " crop"));
    }
    // Resize-then-crop, computing only the crop: a thin image (say 22x8192)
    // would otherwise be resized to 256x95325 first.
    const int x0 = (rw - spec.width) / 2, y0 = (rh - spec.height) / 2;
    if (spec.nearest) {
      // Nearest: output (x, y) of the rw x rh resize reads source
      // (floor(x * w / rw), floor(y * h / rh)), as ResizeNearest.
      sized = Image{spec.width, spec.height, img->channels,
                    std::vector<uint8_t>(static_cast<size_t>(spec.width) * spec.height * img->channels)};
      for (int y = 0; y < spec.height; ++y) {
        const int sy = static_cast<int>(static_cast<int64_t>(y0 + y) * img->height / rh);
        for (int x = 0; x < spec.width; ++x) {
          const int sx = static_cast<int>(static_cast<int64_t>(x0 + x) * img->width / rw);
          for (int c = 0; c < img->channels; ++c) {
            sized.pixels[(static_cast<size_t>(y) * spec.width + x) * img->channels + c] =
                img->pixels[(static_cast<size_t>(sy) * img->width + sx) * img->channels + c];
          }
        }
      }
    } else {
      sized = ResizeBilinearWindow(*img, rw, rh, x0, y0, spec.width, spec.height);
    }
  } else if (spec.crop_only) {
    absl::StatusOr<Image> cropped = CenterCrop(*img, spec.width, spec.height);
    if (!cropped.ok()) return cropped.status();
    sized = *std::move(cropped);
  } else {
    sized = resize(*img, spec.width, spec.height);
  }
  const size_t plane = static_cast<size_t>(spec.width) * spec.height;
  for (int c = 0; c < spec.channels; ++c) {
    const int src_c = spec.bgr ? 2 - c : c;
    const float mul = spec.scale / spec.std[c];
    const float add = -spec.mean[c] / spec.std[c];
    float* dst = out + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      dst[i] = sized.pixels[i * spec.channels + src_c] * mul + add;
    }
  }
  return absl::OkStatus();
}

}  // namespace cnnserve::image
