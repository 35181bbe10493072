// The built-in model zoo: the classic CNN architectures built directly as
// engine Graphs, so every one can be served, inspected and benchmarked with
// no file. Names: zoo:lenet5, zoo:alexnet (torchvision), zoo:alexnet_lrn
// (the original, with local response normalization), zoo:vgg11 ... zoo:vgg19
// and their _bn variants, zoo:resnet18 ... zoo:resnet152 (torchvision v1.5
// layout), zoo:resnet20_cifar ... zoo:resnet110_cifar (projection shortcuts).
//
// Weights are He-uniform from a fixed seed: each parameter tensor, numbered
// in torchvision's state_dict order, takes DeterministicUniform values, so
// tools/export_models.py can give PyTorch the very same weights and the
// tests compare logits. Real weights come through the ONNX path.
#ifndef CNNSERVE_ENGINE_ZOO_H_
#define CNNSERVE_ENGINE_ZOO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace cnnserve::engine {

// Every zoo name, with the "zoo:" prefix.
std::vector<std::string> ZooModels();

// Builds a zoo model by name ("zoo:resnet18" or "resnet18"). NOT_FOUND for
// an unknown name, listing the known ones.
absl::StatusOr<Graph> BuildZooModel(const std::string& name);

// count values uniform in [-1, 1), a pure function of (seed, index) that
// tools/export_models.py computes bit for bit the same.
std::vector<double> DeterministicUniform(uint64_t seed, int64_t count);

// The deterministic input the golden tests feed: seed 1000000.
std::vector<float> DeterministicInput(int64_t count);

}  // namespace cnnserve::engine

#endif  // CNNSERVE_ENGINE_ZOO_H_
