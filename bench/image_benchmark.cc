// Image decode + preprocess per image on one core, as the server does for a
// BYTES input or Classify: a 224x224 JPEG to the ResNet input (resize 256,
// centre crop 224, mean/std), and a 640x480 photo-sized JPEG (where the DCT
// scaling pays). Goal: under 2 ms for 224x224. Run: build/bin/image_benchmark
#include <cmath>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "bench/synthetic_jpeg.h"
#include "engine/image/preprocess.h"

namespace cnnserve::image {
namespace {

std::string MakeJpeg(int w, int h) { return bench::SyntheticJpeg(w, h, /*noise=*/0); }

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
