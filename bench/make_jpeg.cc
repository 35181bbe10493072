// make_jpeg OUT.jpg WIDTH HEIGHT: writes a photo-sized synthetic JPEG
// (synthetic_jpeg.h, noise +-12) for load tests that send encoded images,
// such as bench/overload with PAYLOAD=jpeg.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "bench/synthetic_jpeg.h"

int main(int argc, char** argv) {
  const int w = argc == 4 ? std::atoi(argv[2]) : 0, h = argc == 4 ? std::atoi(argv[3]) : 0;
  if (w < 1 || h < 1 || w > 8192 || h > 8192) {
    std::cerr << "usage: make_jpeg OUT.jpg WIDTH HEIGHT (1 to 8192 pixels each)\n";
    return 2;
  }
  const std::string jpeg = cnnserve::bench::SyntheticJpeg(w, h, 12);
  std::ofstream out(argv[1], std::ios::binary);
  out << jpeg;
  if (!out.flush()) {
    std::cerr << "cannot write " << argv[1] << "\n";
    return 1;
  }
  std::cout << argv[1] << ": " << w << "x" << h << ", " << jpeg.size() << " bytes\n";
  return 0;
}
