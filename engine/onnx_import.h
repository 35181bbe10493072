// ONNX importer: turns an ONNX ModelProto (as torch.onnx.export writes it)
// into an engine Graph. It does not run anything.
//
// Errors: INVALID_ARGUMENT for a file that is not a well-formed ONNX model
// (unparsable, dangling edges, wrong shapes, external data), UNIMPLEMENTED for
// a valid model that uses an op or attribute the engine does not support; the
// message names the node, the op and the attribute. NOT_FOUND when the file
// does not exist.
#ifndef CNNSERVE_ENGINE_ONNX_IMPORT_H_
#define CNNSERVE_ENGINE_ONNX_IMPORT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace cnnserve::engine {

// Parses serialized ModelProto bytes.
absl::StatusOr<Graph> ImportOnnx(std::string_view bytes);

// Reads and parses an .onnx file.
absl::StatusOr<Graph> ImportOnnxFile(const std::string& path);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_ONNX_IMPORT_H_
