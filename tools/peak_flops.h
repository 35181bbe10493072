// Measures this machine's peak FP32 FLOP/s on one core with an FMA loop
// (AVX-512 where the CPU has it, else AVX2), so benchmarks can say what
// share of the hardware they use.
#ifndef CNNSERVE_TOOLS_PEAK_FLOPS_H_
#define CNNSERVE_TOOLS_PEAK_FLOPS_H_

namespace cnnserve::tools {

struct PeakFlops {
  double gflops_per_core = 0;  // 0 when the CPU has no AVX2/FMA
  const char* isa = "none";    // the vector width that gave it: "avx2" or "avx512"
};

// The best of independent FMA chains on one thread over ~`seconds` for each
// vector width the CPU has (oneDNN uses the widest; some CPUs with one
// 512-bit FMA unit are no faster with it, so both are measured).
PeakFlops MeasurePeakFlops(double seconds);

}  // namespace cnnserve::tools

#endif  // CNNSERVE_TOOLS_PEAK_FLOPS_H_
