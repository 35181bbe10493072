#include "engine/zoo.h"

#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cnnserve::engine {
namespace {

// Builds a graph layer by layer, numbering parameters in state_dict order.
class ZooBuilder {
 public:
  explicit ZooBuilder(Shape input) {
    graph_.inputs.push_back({"input", input});
    value_ = "input";
    channels_ = input[1];
  }

  const std::string& value() const { return value_; }
  int64_t channels() const { return channels_; }
  void Set(const std::string& value, int64_t channels) {
    value_ = value;
    channels_ = channels;
  }

  std::string Conv(int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias) {
    ConvParams p;
    p.kernel = {k, k};
    p.strides = {stride, stride};
    p.dilations = {1, 1};
    p.pads_begin = {pad, pad};
    p.pads_end = {pad, pad};
    p.has_bias = bias;
    const double bound = std::sqrt(6.0 / (channels_ * k * k));  // He-uniform
    std::vector<std::string> inputs = {value_, Param({out, channels_, k, k}, bound, 0)};
    if (bias) inputs.push_back(Param({out}, 0.1, 0));
    channels_ = out;
    return Add(std::move(inputs), p);
  }

  std::string BatchNorm() {
    const Shape c = {channels_};
    std::vector<std::string> inputs = {value_, Param(c, 0.1, 1.0), Param(c, 0.1, 0),
                                       Param(c, 0.1, 0), Param(c, 0.25, 1.25)};
    return Add(std::move(inputs), BatchNormParams{1e-5f});
  }

  std::string Relu() { return Add({value_}, EltwiseParams{}); }

  std::string MaxPool(int64_t k, int64_t stride, int64_t pad) {
    PoolParams p;
    p.kernel = {k, k};
    p.strides = {stride, stride};
    p.pads_begin = {pad, pad};
    p.pads_end = {pad, pad};
    return Add({value_}, p);
  }

  std::string GlobalAveragePool() {
    PoolParams p;
    p.kind = PoolParams::Kind::kAverage;
    p.global = true;
    return Add({value_}, p);
  }

  std::string Lrn(int64_t size, float alpha, float beta, float bias) {
    return Add({value_}, LrnParams{size, alpha, beta, bias});
  }

  std::string Flatten(int64_t features) {
    channels_ = features;
    return Add({value_}, FlattenParams{1});
  }

  std::string Linear(int64_t out) {
    const double bound = std::sqrt(6.0 / channels_);
    std::vector<std::string> inputs = {value_, Param({out, channels_}, bound, 0),
                                       Param({out}, 0.1, 0)};
    channels_ = out;
    return Add(std::move(inputs), GemmParams{true, {}});
  }

  std::string Sum(const std::string& other) { return Add({value_, other}, AddParams{}); }

  Graph Finish() {
    graph_.outputs.push_back({value_, {-1, channels_}});
    return std::move(graph_);
  }

 private:
  // A parameter tensor: center + scale * DeterministicUniform(next index).
  std::string Param(const Shape& shape, double scale, double center) {
    const std::string name = absl::StrCat("param", params_);
    std::vector<double> u = DeterministicUniform(params_++, NumElements(shape));
    Tensor t{shape, std::vector<float>(u.size())};
    for (size_t i = 0; i < u.size(); ++i) t.data[i] = static_cast<float>(center + scale * u[i]);
    graph_.initializers[name] = std::move(t);
    return name;
  }

  std::string Add(std::vector<std::string> inputs, OpParams params) {
    const std::string out = absl::StrCat("v", graph_.nodes.size());
    graph_.nodes.push_back({absl::StrCat(OpName(params), "_", graph_.nodes.size()),
                            std::move(inputs), {out}, std::move(params)});
    value_ = out;
    return out;
  }

  Graph graph_;
  std::string value_;
  int64_t channels_ = 0;
  uint64_t params_ = 0;
};

Graph LeNet5() {
  ZooBuilder b({-1, 1, 32, 32});
  b.Conv(6, 5, 1, 0, true);
  b.Relu();
  b.MaxPool(2, 2, 0);
  b.Conv(16, 5, 1, 0, true);
  b.Relu();
  b.MaxPool(2, 2, 0);
  b.Flatten(16 * 5 * 5);
  for (int64_t out : {120, 84}) {
    b.Linear(out);
    b.Relu();
  }
  b.Linear(10);
  return b.Finish();
}

// torchvision's AlexNet, or the original with LRN (96-256-384-384-256).
Graph AlexNet(bool lrn) {
  ZooBuilder b({-1, 3, 224, 224});
  const std::vector<int64_t> widths = lrn ? std::vector<int64_t>{96, 256, 384, 384, 256}
                                          : std::vector<int64_t>{64, 192, 384, 256, 256};
  b.Conv(widths[0], 11, 4, 2, true);
  b.Relu();
  if (lrn) b.Lrn(5, 1e-4f, 0.75f, 2.0f);
  b.MaxPool(3, 2, 0);
  b.Conv(widths[1], 5, 1, 2, true);
  b.Relu();
  if (lrn) b.Lrn(5, 1e-4f, 0.75f, 2.0f);
  b.MaxPool(3, 2, 0);
  for (int i = 2; i < 5; ++i) {
    b.Conv(widths[i], 3, 1, 1, true);
    b.Relu();
  }
  b.MaxPool(3, 2, 0);
  // torchvision's AdaptiveAvgPool2d((6, 6)) is the identity at 224x224.
  b.Flatten(widths[4] * 6 * 6);
  for (int64_t out : {4096, 4096}) {
    b.Linear(out);
    b.Relu();
  }
  b.Linear(1000);
  return b.Finish();
}

Graph Vgg(const std::vector<int64_t>& config, bool batch_norm) {
  ZooBuilder b({-1, 3, 224, 224});
  for (int64_t v : config) {
    if (v == 0) {
      b.MaxPool(2, 2, 0);
      continue;
    }
    b.Conv(v, 3, 1, 1, true);
    if (batch_norm) b.BatchNorm();
    b.Relu();
  }
  b.Flatten(512 * 7 * 7);  // AdaptiveAvgPool2d((7, 7)) is the identity at 224x224
  for (int64_t out : {4096, 4096}) {
    b.Linear(out);
    b.Relu();
  }
  b.Linear(1000);
  return b.Finish();
}

// One residual block; stride on the 3x3 (torchvision v1.5).
void ResidualBlock(ZooBuilder& b, int64_t planes, int64_t stride, bool bottleneck) {
  const int64_t expansion = bottleneck ? 4 : 1;
  const std::string input = b.value();
  const int64_t in_channels = b.channels();
  if (bottleneck) {
    b.Conv(planes, 1, 1, 0, false);
    b.BatchNorm();
    b.Relu();
    b.Conv(planes, 3, stride, 1, false);
    b.BatchNorm();
    b.Relu();
    b.Conv(planes * 4, 1, 1, 0, false);
    b.BatchNorm();
  } else {
    b.Conv(planes, 3, stride, 1, false);
    b.BatchNorm();
    b.Relu();
    b.Conv(planes, 3, 1, 1, false);
    b.BatchNorm();
  }
  const std::string main = b.value();
  std::string shortcut = input;
  if (stride != 1 || in_channels != planes * expansion) {
    b.Set(input, in_channels);
    b.Conv(planes * expansion, 1, stride, 0, false);
    shortcut = b.BatchNorm();
  }
  b.Set(main, planes * expansion);
  b.Sum(shortcut);
  b.Relu();
}

Graph ResNet(const std::vector<int>& blocks, bool bottleneck) {
  ZooBuilder b({-1, 3, 224, 224});
  b.Conv(64, 7, 2, 3, false);
  b.BatchNorm();
  b.Relu();
  b.MaxPool(3, 2, 1);
  const int64_t planes[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    for (int i = 0; i < blocks[stage]; ++i) {
      ResidualBlock(b, planes[stage], i == 0 && stage > 0 ? 2 : 1, bottleneck);
    }
  }
  b.GlobalAveragePool();
  b.Flatten(512 * (bottleneck ? 4 : 1));
  b.Linear(1000);
  return b.Finish();
}

// He et al.'s CIFAR ResNet (6n+2 layers), with projection shortcuts.
Graph CifarResNet(int n) {
  ZooBuilder b({-1, 3, 32, 32});
  b.Conv(16, 3, 1, 1, false);
  b.BatchNorm();
  b.Relu();
  const int64_t planes[] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    for (int i = 0; i < n; ++i) ResidualBlock(b, planes[stage], i == 0 && stage > 0 ? 2 : 1, false);
  }
  b.GlobalAveragePool();
  b.Flatten(64);
  b.Linear(10);
  return b.Finish();
}

const std::map<std::string, std::function<Graph()>>& Registry() {
  static const auto* registry = new std::map<std::string, std::function<Graph()>>{
      {"lenet5", LeNet5},
      {"alexnet", [] { return AlexNet(false); }},
      {"alexnet_lrn", [] { return AlexNet(true); }},
      {"vgg11", [] { return Vgg({64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}, false); }},
      {"vgg11_bn", [] { return Vgg({64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}, true); }},
      {"vgg13", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}, false); }},
      {"vgg13_bn", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}, true); }},
      {"vgg16", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}, false); }},
      {"vgg16_bn", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}, true); }},
      {"vgg19", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0}, false); }},
      {"vgg19_bn", [] { return Vgg({64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0}, true); }},
      {"resnet18", [] { return ResNet({2, 2, 2, 2}, false); }},
      {"resnet34", [] { return ResNet({3, 4, 6, 3}, false); }},
      {"resnet50", [] { return ResNet({3, 4, 6, 3}, true); }},
      {"resnet101", [] { return ResNet({3, 4, 23, 3}, true); }},
      {"resnet152", [] { return ResNet({3, 8, 36, 3}, true); }},
      {"resnet20_cifar", [] { return CifarResNet(3); }},
      {"resnet32_cifar", [] { return CifarResNet(5); }},
      {"resnet44_cifar", [] { return CifarResNet(7); }},
      {"resnet56_cifar", [] { return CifarResNet(9); }},
      {"resnet110_cifar", [] { return CifarResNet(18); }},
  };
  return *registry;
}

}  // namespace

std::vector<double> DeterministicUniform(uint64_t seed, int64_t count) {
  std::vector<double> out(count);
  for (int64_t i = 0; i < count; ++i) {
    // splitmix64 of (seed, index), top 53 bits as a double in [0, 1).
    uint64_t z = (seed << 32) ^ static_cast<uint64_t>(i);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    out[i] = static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;
  }
  return out;
}

std::vector<float> DeterministicInput(int64_t count) {
  std::vector<double> u = DeterministicUniform(1000000, count);
  return std::vector<float>(u.begin(), u.end());
}

std::vector<std::string> ZooModels() {
  std::vector<std::string> names;
  for (const auto& [name, build] : Registry()) names.push_back("zoo:" + name);
  return names;
}

absl::StatusOr<Graph> BuildZooModel(const std::string& name) {
  std::string key = name;
  if (absl::StartsWith(key, "zoo:")) key = key.substr(4);
  auto it = Registry().find(key);
  if (it == Registry().end()) {
    return absl::NotFoundError(absl::StrCat("unknown zoo model '", name, "'; known: ",
                                            absl::StrJoin(ZooModels(), ", ")));
  }
  return it->second();
}

}  // namespace cnnserve::engine
