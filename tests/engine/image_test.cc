// Image decoding and preprocessing: PNG and JPEG decode, limits checked from
// the header, corrupt input refused with a clear message, nearest resize.
#include "engine/image/image.h"
#include "engine/image/preprocess.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "turbojpeg.h"

namespace cnnserve::image {
namespace {

using ::testing::HasSubstr;

std::string ReadSample(const std::string& name) {
  std::ifstream in(std::string(CNNSERVE_SOURCE_DIR "/samples/") + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

DecodeOptions Gray() {
  DecodeOptions o;
  o.channels = 1;
  return o;
}

TEST(ImageTest, DecodesGrayscalePng) {
  auto img = DecodeImage(ReadSample("digit_0.png"), Gray());
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->width, 8);
  EXPECT_EQ(img->height, 8);
  EXPECT_EQ(img->pixels.size(), 64u);
}

TEST(ImageTest, GrayPngToRgbRepeatsTheChannel) {
  auto img = DecodeImage(ReadSample("digit_0.png"), DecodeOptions{});
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->channels, 3);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(img->pixels[i * 3], img->pixels[i * 3 + 1]);
    EXPECT_EQ(img->pixels[i * 3], img->pixels[i * 3 + 2]);
  }
}

TEST(ImageTest, RefusesTruncatedPng) {
  std::string png = ReadSample("digit_0.png");
  auto s = DecodeImage(png.substr(0, png.size() - 30), Gray()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("PNG"));
}

TEST(ImageTest, RefusesHugeDimensionsFromTheHeader) {
  // A JPEG that claims 20000x20000 pixels: refused before any pixel is allocated.
  std::vector<unsigned char> pixels(16 * 16 * 3, 128);
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjhandle tj = tjInitCompress();
  ASSERT_EQ(tjCompress2(tj, pixels.data(), 16, 0, 16, TJPF_RGB, &jpeg, &size, TJSAMP_444, 90, 0), 0);
  std::string bytes(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  // Patch the SOF0 frame header's height and width (big-endian after FFC0 len8 precision).
  size_t sof = bytes.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  bytes[sof + 5] = static_cast<char>(20000 >> 8);
  bytes[sof + 6] = static_cast<char>(20000 & 0xff);
  bytes[sof + 7] = static_cast<char>(20000 >> 8);
  bytes[sof + 8] = static_cast<char>(20000 & 0xff);
  auto s = DecodeImage(bytes, DecodeOptions{}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("20000x20000"));
}

TEST(ImageTest, DecodesJpegToGrayAndRgb) {
  std::vector<unsigned char> pixels(16 * 16 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = (i * 7) % 256;
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjhandle tj = tjInitCompress();
  ASSERT_EQ(tjCompress2(tj, pixels.data(), 16, 0, 16, TJPF_RGB, &jpeg, &size, TJSAMP_444, 95, 0), 0);
  std::string bytes(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  auto rgb = DecodeImage(bytes, DecodeOptions{});
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->pixels.size(), 16u * 16 * 3);
  auto gray = DecodeImage(bytes, Gray());
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->pixels.size(), 16u * 16);
}

TEST(ImageTest, RefusesEmptyAndUnknownFormats) {
  EXPECT_THAT(std::string(DecodeImage("", Gray()).status().message()), HasSubstr("empty"));
  auto s = DecodeImage("GIF89a....", Gray()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("neither a PNG nor a JPEG"));
}

TEST(ImageTest, ResizeNearestReplicatesPixelsOnIntegerUpscale) {
  Image src{2, 2, 1, {10, 20, 30, 40}};
  Image dst = ResizeNearest(src, 4, 4);
  EXPECT_EQ(dst.pixels, (std::vector<uint8_t>{10, 10, 20, 20, 10, 10, 20, 20,
                                              30, 30, 40, 40, 30, 30, 40, 40}));
}

TEST(ImageTest, AppendChwFloatScalesAndPlanarises) {
  Image rgb{1, 2, 3, {255, 0, 51, 0, 255, 102}};
  std::vector<float> out;
  AppendChwFloat(rgb, &out);
  EXPECT_THAT(out, ::testing::Pointwise(::testing::FloatNear(1e-6),
                                        std::vector<float>{1, 0, 0, 1, 0.2f, 0.4f}));
}

}  // namespace
}  // namespace cnnserve::image

namespace cnnserve::image {
namespace {

Image Gradient(int w, int h, int c) {
  Image img{w, h, c, std::vector<uint8_t>(static_cast<size_t>(w) * h * c)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
  return img;
}

TEST(ResizeWindowTest, AWindowEqualsTheSameCropOfTheFullResize) {
  const Image src = Gradient(45, 31, 3);
  for (auto [w, h] : {std::pair{100, 70}, std::pair{20, 13}, std::pair{45, 31}}) {
    const Image full = ResizeBilinear(src, w, h);
    const int x0 = w / 4, y0 = h / 3, ww = w / 2, wh = h / 2;
    const Image window = ResizeBilinearWindow(src, w, h, x0, y0, ww, wh);
    ASSERT_EQ(window.width, ww);
    ASSERT_EQ(window.height, wh);
    for (int y = 0; y < wh; ++y) {
      for (int x = 0; x < ww; ++x) {
        for (int c = 0; c < 3; ++c) {
          ASSERT_EQ(window.pixels[(y * ww + x) * 3 + c], full.pixels[((y0 + y) * w + x0 + x) * 3 + c])
              << w << "x" << h << " at " << x << "," << y;
        }
      }
    }
  }
}

}  // namespace
}  // namespace cnnserve::image

namespace cnnserve::image {
namespace {

// Found by the image fuzzer: a 362-byte 22x8192 JPEG took 15 s under ASan
// because resize-shorter-to-256 built a 256x95325 image before cropping.
// Now only the 224x224 crop is computed; its pixels match the full path.
TEST(PreprocessTest, AThinImageCostsOnlyItsCrop) {
  std::ifstream in(CNNSERVE_SOURCE_DIR "/tests/data/images/thin_22x8192.jpg", std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  PreprocessSpec spec;
  spec.width = spec.height = 224;
  spec.resize_shorter = 256;
  std::vector<float> out(3 * 224 * 224, -1.0f);
  ASSERT_TRUE(DecodeAndPreprocess(bytes.str(), spec, out.data()).ok());
  // The same through the full resize and crop.
  auto img = DecodeImage(bytes.str(), {.channels = 3, .min_shorter_side = 256});
  ASSERT_TRUE(img.ok());
  const int rw = 256, rh = static_cast<int>(int64_t{256} * img->height / img->width);
  auto cropped = CenterCrop(ResizeBilinear(*img, rw, rh), 224, 224);
  ASSERT_TRUE(cropped.ok());
  std::vector<float> want;
  AppendChwFloat(*cropped, &want);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_FLOAT_EQ(out[i], want[i]) << i;
}

}  // namespace
}  // namespace cnnserve::image
