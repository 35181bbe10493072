// Reading and writing NumPy .npy files of float32 (C order), so cnnserve-run
// exchanges tensors with Python and other engines.
#ifndef CNNSERVE_TOOLS_NPY_H_
#define CNNSERVE_TOOLS_NPY_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/tensor.h"

namespace cnnserve::tools {

// INVALID_ARGUMENT for anything but a little-endian float32, C-order array.
absl::StatusOr<engine::Tensor> ReadNpy(const std::string& path);
absl::Status WriteNpy(const std::string& path, const engine::Tensor& tensor);

}  // namespace cnnserve::tools

#endif  // CNNSERVE_TOOLS_NPY_H_
