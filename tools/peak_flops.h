// Measures this machine's peak FP32 FLOP/s on one core with an AVX2 FMA
// loop, so benchmarks can say what share of the hardware they use.
#ifndef CNNSERVE_TOOLS_PEAK_FLOPS_H_
#define CNNSERVE_TOOLS_PEAK_FLOPS_H_

namespace cnnserve::tools {

// GFLOP/s of one thread running independent FMA chains for ~`seconds`.
// 0 when the CPU has no AVX2/FMA.
double MeasurePeakGflopsPerCore(double seconds);

}  // namespace cnnserve::tools

#endif  // CNNSERVE_TOOLS_PEAK_FLOPS_H_
