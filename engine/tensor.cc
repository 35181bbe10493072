#include "engine/tensor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cnnserve::engine {

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t ItemElements(const Shape& shape) {
  return shape.empty() ? 1 : NumElements(Shape(shape.begin() + 1, shape.end()));
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat(
      "[",
      absl::StrJoin(shape, ",",
                    [](std::string* out, int64_t d) {
                      absl::StrAppend(out, d < 0 ? std::string("N") : absl::StrCat(d));
                    }),
      "]");
}

}  // namespace cnnserve::engine
