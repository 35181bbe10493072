#include "engine/image/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "spng.h"
#include "turbojpeg.h"

namespace cnnserve::image {
namespace {

bool IsPng(std::string_view b) { return b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1a\n"; }
bool IsJpeg(std::string_view b) { return b.size() >= 3 && b.substr(0, 3) == "\xff\xd8\xff"; }

absl::Status CheckSize(int64_t width, int64_t height, const DecodeOptions& options) {
  if (width <= 0 || height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("image has an empty size ", width, "x", height));
  }
  if (width > options.max_side || height > options.max_side ||
      width * height > options.max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image is ", width, "x", height, " pixels; the limit is ", options.max_side,
        " per side and ", options.max_pixels, " pixels in all"));
  }
  return absl::OkStatus();
}

// Converts interleaved 8-bit pixels with `from` channels (1, 3 or 4) to `to` (1 or 3).
Image Convert(int width, int height, int from, const uint8_t* src, int to) {
  Image out{width, height, to, std::vector<uint8_t>(static_cast<size_t>(width) * height * to)};
  const size_t n = static_cast<size_t>(width) * height;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = src + i * from;
    if (to == 1) {
      // ITU-R 601 luma, as PIL's convert("L").
      out.pixels[i] = from == 1 ? p[0]
                                : static_cast<uint8_t>((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
    } else {
      for (int c = 0; c < 3; ++c) out.pixels[i * 3 + c] = p[from == 1 ? 0 : c];
    }
  }
  return out;
}

absl::StatusOr<Image> DecodePng(std::string_view bytes, const DecodeOptions& options) {
  std::unique_ptr<spng_ctx, decltype(&spng_ctx_free)> ctx(spng_ctx_new(0), spng_ctx_free);
  if (ctx == nullptr) return absl::ResourceExhaustedError("cannot allocate a PNG decoder");
  spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR);
  spng_set_png_buffer(ctx.get(), bytes.data(), bytes.size());
  spng_ihdr ihdr;
  if (int err = spng_get_ihdr(ctx.get(), &ihdr); err != 0) {
    return absl::InvalidArgumentError(absl::StrCat("PNG header is invalid: ", spng_strerror(err)));
  }
  if (auto s = CheckSize(ihdr.width, ihdr.height, options); !s.ok()) return s;
  // 8-bit-or-less grayscale decodes as is; everything else (palette, 16-bit,
  // alpha, RGB) through RGBA8, then to the requested channels.
  const bool gray = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr.bit_depth <= 8;
  const int fmt = gray ? SPNG_FMT_G8 : SPNG_FMT_RGBA8;
  size_t size = 0;
  if (int err = spng_decoded_image_size(ctx.get(), fmt, &size); err != 0) {
    return absl::InvalidArgumentError(absl::StrCat("PNG cannot be decoded: ", spng_strerror(err)));
  }
  std::vector<uint8_t> raw(size);
  if (int err = spng_decode_image(ctx.get(), raw.data(), raw.size(), fmt, 0); err != 0) {
    return absl::InvalidArgumentError(absl::StrCat("PNG data is corrupt or truncated: ",
                                                   spng_strerror(err)));
  }
  return Convert(ihdr.width, ihdr.height, gray ? 1 : 4, raw.data(), options.channels);
}

absl::StatusOr<Image> DecodeJpeg(std::string_view bytes, const DecodeOptions& options) {
  std::unique_ptr<void, decltype(&tjDestroy)> tj(tjInitDecompress(), tjDestroy);
  if (tj == nullptr) return absl::ResourceExhaustedError("cannot allocate a JPEG decoder");
  auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, bytes.size(), &width, &height, &subsamp, &colorspace) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("JPEG header is invalid: ", tjGetErrorStr2(tj.get())));
  }
  if (auto s = CheckSize(width, height, options); !s.ok()) return s;
  // The smallest DCT scaling whose output still covers the requested size.
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  int best_w = width, best_h = height;
  const bool scale = options.min_width > 0 || options.min_height > 0 || options.min_shorter_side > 0;
  for (int i = 0; scale && factors != nullptr && i < count; ++i) {
    const int w = TJSCALED(width, factors[i]);
    const int h = TJSCALED(height, factors[i]);
    if (w >= options.min_width && h >= options.min_height &&
        std::min(w, h) >= options.min_shorter_side && w * int64_t{h} < best_w * int64_t{best_h}) {
      best_w = w;
      best_h = h;
    }
  }
  width = best_w;
  height = best_h;
  Image out{width, height, options.channels,
            std::vector<uint8_t>(static_cast<size_t>(width) * height * options.channels)};
  const int pixel_format = options.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  if (tjDecompress2(tj.get(), data, bytes.size(), out.pixels.data(), width, 0, height,
                    pixel_format, TJFLAG_ACCURATEDCT) != 0 &&
      tjGetErrorCode(tj.get()) == TJERR_FATAL) {
    return absl::InvalidArgumentError(absl::StrCat("JPEG data is corrupt or truncated: ",
                                                   tjGetErrorStr2(tj.get())));
  }
  return out;
}

}  // namespace

absl::StatusOr<Image> DecodeImage(std::string_view bytes, const DecodeOptions& options) {
  if (options.channels != 1 && options.channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("images decode to 1 or 3 channels, not ", options.channels));
  }
  if (bytes.empty()) return absl::InvalidArgumentError("image is empty (0 bytes)");
  if (IsPng(bytes)) return DecodePng(bytes, options);
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, options);
  return absl::InvalidArgumentError(
      "image is neither a PNG nor a JPEG file (unrecognised signature)");
}

Image ResizeNearest(const Image& src, int width, int height) {
  if (src.width == width && src.height == height) return src;
  Image out{width, height, src.channels,
            std::vector<uint8_t>(static_cast<size_t>(width) * height * src.channels)};
  for (int y = 0; y < height; ++y) {
    const int sy = static_cast<int>(static_cast<int64_t>(y) * src.height / height);
    for (int x = 0; x < width; ++x) {
      const int sx = static_cast<int>(static_cast<int64_t>(x) * src.width / width);
      std::memcpy(&out.pixels[(static_cast<size_t>(y) * width + x) * src.channels],
                  &src.pixels[(static_cast<size_t>(sy) * src.width + sx) * src.channels],
                  src.channels);
    }
  }
  return out;
}

namespace {

// One output coordinate's source span and normalised triangle weights.
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

// Taps of outputs [first, first + count) of an `in` -> `out` resize.
std::vector<Taps> ComputeTaps(int in, int out, int first, int count) {
  const double scale = static_cast<double>(in) / out;
  const double support = std::max(scale, 1.0);  // filter radius in source pixels
  std::vector<Taps> taps(count);
  for (int k = 0; k < count; ++k) {
    const int o = first + k;
    const double center = (o + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(std::floor(center - support)));
    const int hi = std::min(in, static_cast<int>(std::ceil(center + support)));
    taps[k].first = lo;
    double total = 0;
    std::vector<double> w;
    for (int i = lo; i < hi; ++i) {
      const double d = std::abs((i + 0.5 - center) / support);
      w.push_back(d < 1 ? 1 - d : 0);
      total += w.back();
    }
    if (total == 0) {  // cannot happen for in, out >= 1, but never divide by 0
      w.assign(1, 1.0);
      taps[k].first = std::min(in - 1, static_cast<int>(center));
      total = 1;
    }
    for (double x : w) taps[k].weights.push_back(static_cast<float>(x / total));
  }
  return taps;
}

uint8_t ToByte(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

Image ResizeBilinear(const Image& src, int width, int height) {
  if (src.width == width && src.height == height) return src;
  return ResizeBilinearWindow(src, width, height, 0, 0, width, height);
}

Image ResizeBilinearWindow(const Image& src, int width, int height, int x0, int y0, int w, int h) {
  const int c = src.channels;
  const std::vector<Taps> tx = ComputeTaps(src.width, width, x0, w);
  const std::vector<Taps> ty = ComputeTaps(src.height, height, y0, h);
  // Only the source rows the window's outputs read.
  const int row_lo = ty.front().first;
  const int row_hi = ty.back().first + static_cast<int>(ty.back().weights.size());
  // Horizontal pass into floats (those rows x w), then vertical.
  std::vector<float> mid(static_cast<size_t>(row_hi - row_lo) * w * c);
  for (int y = row_lo; y < row_hi; ++y) {
    const uint8_t* row = &src.pixels[static_cast<size_t>(y) * src.width * c];
    float* dst = &mid[static_cast<size_t>(y - row_lo) * w * c];
    for (int x = 0; x < w; ++x) {
      for (int ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (size_t k = 0; k < tx[x].weights.size(); ++k) {
          acc += tx[x].weights[k] * row[(tx[x].first + k) * c + ch];
        }
        dst[x * c + ch] = acc;
      }
    }
  }
  Image out{w, h, c, std::vector<uint8_t>(static_cast<size_t>(w) * h * c)};
  const size_t stride = static_cast<size_t>(w) * c;
  for (int y = 0; y < h; ++y) {
    for (size_t i = 0; i < stride; ++i) {
      float acc = 0;
      for (size_t k = 0; k < ty[y].weights.size(); ++k) {
        acc += ty[y].weights[k] * mid[(ty[y].first - row_lo + k) * stride + i];
      }
      out.pixels[y * stride + i] = ToByte(acc);
    }
  }
  return out;
}

absl::StatusOr<Image> CenterCrop(const Image& src, int width, int height) {
  if (src.width < width || src.height < height) {
    return absl::InvalidArgumentError(absl::StrCat("image of ", src.width, "x", src.height,
                                                   " is smaller than the ", width, "x", height,
                                                   " crop"));
  }
  if (src.width == width && src.height == height) return src;
  const int left = (src.width - width) / 2, top = (src.height - height) / 2;
  Image out{width, height, src.channels,
            std::vector<uint8_t>(static_cast<size_t>(width) * height * src.channels)};
  for (int y = 0; y < height; ++y) {
    std::memcpy(&out.pixels[static_cast<size_t>(y) * width * src.channels],
                &src.pixels[(static_cast<size_t>(top + y) * src.width + left) * src.channels],
                static_cast<size_t>(width) * src.channels);
  }
  return out;
}

void AppendChwFloat(const Image& image, std::vector<float>* out) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  const size_t base = out->size();
  out->resize(base + plane * image.channels);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < image.channels; ++c) {
      (*out)[base + c * plane + i] = image.pixels[i * image.channels + c] / 255.0f;
    }
  }
}

}  // namespace cnnserve::image
