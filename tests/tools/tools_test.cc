// .npy I/O and cost accounting, the pieces the engine tools are made of.
#include <cstdio>
#include <fstream>

#include "engine/cost.h"
#include "engine/zoo.h"
#include "gtest/gtest.h"
#include "tools/npy.h"

namespace cnnserve::tools {
namespace {

TEST(NpyTest, RoundTripsAFloat32Tensor) {
  const std::string path = ::testing::TempDir() + "/x.npy";
  engine::Tensor t{{2, 3}, {1, 2, 3, 4, 5, 6.5f}};
  ASSERT_TRUE(WriteNpy(path, t).ok());
  auto back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape, t.shape);
  EXPECT_EQ(back->data, t.data);
}

TEST(NpyTest, RefusesOtherDtypesAndTruncatedData) {
  const std::string path = ::testing::TempDir() + "/bad.npy";
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  std::ofstream(path, std::ios::binary) << std::string("\x93NUMPY\x01\x00", 8)
                                        << static_cast<char>(header.size()) << '\0' << header
                                        << std::string(16, '\0');
  auto s = ReadNpy(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("float32"), std::string::npos) << s;
  EXPECT_EQ(ReadNpy("/nonexistent.npy").status().code(), absl::StatusCode::kNotFound);
}

TEST(CostTest, Vgg16FirstFullyConnectedLayerHoldsMostParameters) {
  auto g = engine::BuildZooModel("zoo:vgg16");
  ASSERT_TRUE(g.ok());
  auto layers = engine::GraphCost(*g, 1);
  ASSERT_TRUE(layers.ok());
  int64_t total = 0, largest = 0;
  for (const auto& l : *layers) {
    total += l.params;
    largest = std::max(largest, l.params);
  }
  EXPECT_EQ(total, 138357544);   // torchvision's VGG-16
  EXPECT_EQ(largest, 102764544); // 25088 x 4096 + 4096
}

TEST(CostTest, ResNet50HasFourGigaMacs) {
  auto g = engine::BuildZooModel("zoo:resnet50");
  ASSERT_TRUE(g.ok());
  auto layers = engine::GraphCost(*g, 1);
  ASSERT_TRUE(layers.ok());
  int64_t macs = 0;
  for (const auto& l : *layers) macs += l.macs;
  EXPECT_NEAR(macs / 1e9, 4.09, 0.05);
}

}  // namespace
}  // namespace cnnserve::tools
