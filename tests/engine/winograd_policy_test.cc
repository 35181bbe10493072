// Which convolutions run as Winograd: the 3x3, stride-1 ones with the
// largest outputs, while their transformed weights (4x the bytes) stay
// within a quarter of the model's weights.
#include <set>
#include <string>

#include "engine/model.h"
#include "engine/plan.h"
#include "engine/zoo.h"
#include "gtest/gtest.h"

namespace cnnserve::engine {
namespace {

// The output sizes (H x W) of the convolutions WinogradConvs picks in a
// built-in model, after the graph passes.
std::multiset<int64_t> ChosenOutputSizes(const std::string& zoo_name) {
  auto graph = BuildZooModel(zoo_name);
  EXPECT_TRUE(graph.ok()) << graph.status();
  auto model = Model::FromGraph(*std::move(graph));
  EXPECT_TRUE(model.ok()) << model.status();
  auto shapes = InferShapes((*model)->graph(), 1);
  EXPECT_TRUE(shapes.ok()) << shapes.status();
  std::multiset<int64_t> sizes;
  for (const std::string& name : WinogradConvs((*model)->graph(), *shapes)) {
    for (const Node& node : (*model)->graph().nodes) {
      if (node.name == name) sizes.insert((*shapes)[node.outputs[0]][2]);
    }
  }
  return sizes;
}

TEST(WinogradPolicyTest, ResNetsTakeTheirLayersDownTo28x28) {
  // ResNet-18: four 3x3 convolutions at 56x56, three at 28x28 (the fourth
  // has stride 2). Its three 14x14 ones would take its transformed weights
  // to 80% of its weights.
  EXPECT_EQ(ChosenOutputSizes("zoo:resnet18"), (std::multiset<int64_t>{28, 28, 28, 56, 56, 56, 56}));
  // ResNet-50 has one 3x3 convolution per bottleneck block. One 14x14 one
  // would fit the budget, but a size is taken whole or not at all.
  EXPECT_EQ(ChosenOutputSizes("zoo:resnet50"), (std::multiset<int64_t>{28, 28, 28, 56, 56, 56}));
}

TEST(WinogradPolicyTest, AlexNetsFullyConnectedWeightsLeaveRoomFor13x13) {
  // Its three 3x3 convolutions hold 9 MB beside 235 MB of Gemm weights.
  EXPECT_EQ(ChosenOutputSizes("zoo:alexnet"), (std::multiset<int64_t>{13, 13, 13}));
}

TEST(WinogradPolicyTest, CifarResNetTakesOnlyItsLargestLayers) {
  // Six 16-channel 3x3 convolutions at 32x32 (the first one, on 3
  // channels, has no Winograd kernel); its 16x16 ones would not fit.
  EXPECT_EQ(ChosenOutputSizes("zoo:resnet20_cifar"), (std::multiset<int64_t>{32, 32, 32, 32, 32, 32}));
}

}  // namespace
}  // namespace cnnserve::engine
