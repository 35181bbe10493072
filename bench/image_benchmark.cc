// Image decode + preprocess per image on one core, as the server does for a
// BYTES input or Classify: a 224x224 JPEG to the ResNet input (resize 256,
// centre crop 224, mean/std), and a 640x480 photo-sized JPEG (where the DCT
// scaling pays). Goal: under 2 ms for 224x224. Run: build/bin/image_benchmark
#include <cmath>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/image/preprocess.h"
#include "turbojpeg.h"

namespace cnnserve::image {
namespace {

// A smooth synthetic RGB picture (JPEG-friendly like a photo), encoded at quality 90.
std::string MakeJpeg(int w, int h) {
  std::vector<unsigned char> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[(static_cast<size_t>(y) * w + x) * 3 + c] =
            static_cast<unsigned char>(127 + 120 * std::sin(0.05 * x + 0.07 * y + c));
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjCompress2(tj, px.data(), w, 0, h, TJPF_RGB, &jpeg, &size, TJSAMP_420, 90, 0);
  std::string out(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

void BM_JpegToResNetInput(benchmark::State& state) {
  const std::string jpeg = MakeJpeg(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  PreprocessSpec spec;
  spec.width = spec.height = 224;
  spec.resize_shorter = 256;
  spec.mean = {0.485f, 0.456f, 0.406f};
  spec.std = {0.229f, 0.224f, 0.225f};
  std::vector<float> out(3 * 224 * 224);
  for (auto _ : state) {
    benchmark::DoNotOptimize(DecodeAndPreprocess(jpeg, spec, out.data()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JpegToResNetInput)->Args({224, 224})->Args({640, 480})->Args({1920, 1080})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cnnserve::image

BENCHMARK_MAIN();
