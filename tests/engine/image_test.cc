// Image decoding and preprocessing: PNG and JPEG decode, limits checked from
// the header, corrupt input refused with a clear message, nearest resize.
#include "engine/image/image.h"

#include <fstream>
#include <sstream>
#include <string>

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
