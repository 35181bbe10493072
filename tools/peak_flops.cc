#include "tools/peak_flops.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace cnnserve::tools {

__attribute__((target("avx2,fma"))) static double FmaLoop(long iterations) {
  // 10 independent accumulators hide the FMA latency (4-5 cycles, 2 ports).
  __m256 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(0.1f * i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 10; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];  // keeps the loop alive
}

double MeasurePeakGflopsPerCore(double seconds) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  using Clock = std::chrono::steady_clock;
  long iterations = 1 << 20;
  double best = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  volatile double sink = 0;
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    sink = sink + FmaLoop(iterations);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, iterations * 10.0 * 8 * 2 / s / 1e9);  // 10 FMAs of 8 lanes, 2 flops each
    if (s < 0.05) iterations *= 2;
  }
  return best;
}

}  // namespace cnnserve::tools
