// A synthetic RGB picture, encoded as a JPEG at quality 90: smooth waves
// (JPEG-friendly like a photo) plus deterministic pixel noise of +-`noise`
// (a photo's fine texture, which is what makes real JPEGs tens of KB).
#ifndef CNNSERVE_BENCH_SYNTHETIC_JPEG_H_
#define CNNSERVE_BENCH_SYNTHETIC_JPEG_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "turbojpeg.h"

namespace cnnserve::bench {

inline std::string SyntheticJpeg(int w, int h, int noise) {
  std::vector<unsigned char> px(static_cast<size_t>(w) * h * 3);
  uint32_t state = 12345;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        state = state * 1664525u + 1013904223u;
        const int jitter = noise == 0 ? 0 : static_cast<int>(state >> 24) % (2 * noise + 1) - noise;
        const int v = static_cast<int>(127 + 120 * std::sin(0.05 * x + 0.07 * y + c)) + jitter;
        px[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<unsigned char>(std::clamp(v, 0, 255));
      }
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjCompress2(tj, px.data(), w, 0, h, TJPF_RGB, &jpeg, &size, TJSAMP_420, 90, 0);
  std::string out(reinterpret_cast<char*>(jpeg), size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

}  // namespace cnnserve::bench

#endif  // CNNSERVE_BENCH_SYNTHETIC_JPEG_H_
