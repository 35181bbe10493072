#include "tools/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cnnserve::tools {

absl::StatusOr<engine::Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open '" + path + "'");
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string bytes = buf.str();
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    return absl::InvalidArgumentError(path + " is not a .npy file");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else {
    if (bytes.size() < 12) return absl::InvalidArgumentError(path + ": truncated header");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  }
  if (offset + header_len > bytes.size()) return absl::InvalidArgumentError(path + ": truncated header");
  const std::string header = bytes.substr(offset, header_len);
  if (header.find("'descr': '<f4'") == std::string::npos) {
    return absl::InvalidArgumentError(path + ": only float32 ('<f4') arrays are supported");
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    return absl::InvalidArgumentError(path + ": only C-order arrays are supported");
  }
  const size_t open = header.find("'shape': (");
  const size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) {
    return absl::InvalidArgumentError(path + ": no shape in the header");
  }
  engine::Tensor t;
  for (absl::string_view d : absl::StrSplit(header.substr(open + 10, close - open - 10), ',')) {
    d = absl::StripAsciiWhitespace(d);
    if (d.empty()) continue;
    int64_t v;
    if (!absl::SimpleAtoi(d, &v) || v < 0) return absl::InvalidArgumentError(path + ": bad shape");
    t.shape.push_back(v);
  }
  const size_t data = offset + header_len;
  const int64_t count = engine::NumElements(t.shape);
  if (bytes.size() - data != static_cast<size_t>(count) * 4) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", bytes.size() - data,
                                                   " data bytes, shape needs ", count * 4));
  }
  t.data.resize(count);
  std::memcpy(t.data.data(), bytes.data() + data, count * 4);
  return t;
}

absl::Status WriteNpy(const std::string& path, const engine::Tensor& tensor) {
  std::string header = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (",
                                    absl::StrJoin(tensor.shape, ", "),
                                    tensor.shape.size() == 1 ? ",), }" : "), }");
  // Pad so the data starts on a 64-byte boundary, ending the header with \n.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::PermissionDeniedError("cannot write '" + path + "'");
  const uint16_t len = header.size();
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * 4);
  return out ? absl::OkStatus() : absl::DataLossError("short write to '" + path + "'");
}

}  // namespace cnnserve::tools
