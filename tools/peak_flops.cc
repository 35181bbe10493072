#include "tools/peak_flops.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace cnnserve::tools {
namespace {

// 10 independent accumulators hide the FMA latency (4-5 cycles, 2 ports).
constexpr int kChains = 10;

__attribute__((target("avx2,fma"))) float Avx2Loop(long iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.1f * i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];  // keeps the loop alive
}

__attribute__((target("avx512f"))) float Avx512Loop(long iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.1f * i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, sum);
  return out[0];
}

// GFLOP/s of `loop` (kChains FMAs of `lanes` floats per iteration), best of
// repeated runs over ~`seconds`.
double Measure(float (*loop)(long), int lanes, double seconds) {
  using Clock = std::chrono::steady_clock;
  long iterations = 1 << 20;
  double best = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  volatile float sink = 0;
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    sink = sink + loop(iterations);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, iterations * kChains * lanes * 2.0 / s / 1e9);  // an FMA is 2 flops
    if (s < 0.05) iterations *= 2;
  }
  return best;
}

}  // namespace

PeakFlops MeasurePeakFlops(double seconds) {
  PeakFlops peak;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return peak;
  const bool avx512 = __builtin_cpu_supports("avx512f");
  peak = {Measure(Avx2Loop, 8, avx512 ? seconds / 2 : seconds), "avx2"};
  if (avx512) {
    const double wide = Measure(Avx512Loop, 16, seconds / 2);
    if (wide > peak.gflops_per_core) peak = {wide, "avx512"};
  }
  return peak;
}

}  // namespace cnnserve::tools
