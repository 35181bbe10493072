// Each engine op, compiled to oneDNN, against a naive reference loop on
// random data: Conv (groups, strides, dilations, asymmetric pads, fused
// Relu, Winograd), MaxPool (pads, ceil_mode), Flatten, Gemm, and a Pad that
// is not folded away.
#include <algorithm>
#include <limits>
#include <random>
#include <string>

#include "engine/model.h"
#include "gtest/gtest.h"

namespace cnnserve::engine {
namespace {

std::vector<float> Random(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor Conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p, bool relu) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const int64_t oc = w.shape[0], icg = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const int64_t oh = (h + p.pads_begin[0] + p.pads_end[0] - ((kh - 1) * p.dilations[0] + 1)) / p.strides[0] + 1;
  const int64_t ow = (wd + p.pads_begin[1] + p.pads_end[1] - ((kw - 1) * p.dilations[1] + 1)) / p.strides[1] + 1;
  Tensor y{{n, oc, oh, ow}, std::vector<float>(n * oc * oh * ow)};
  const int64_t ocg = oc / p.group;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t yy = 0; yy < oh; ++yy)
        for (int64_t xx = 0; xx < ow; ++xx) {
          float acc = b.data[o];
          const int64_t g = o / ocg;
          for (int64_t i = 0; i < icg; ++i)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t sy = yy * p.strides[0] - p.pads_begin[0] + ky * p.dilations[0];
                const int64_t sx = xx * p.strides[1] - p.pads_begin[1] + kx * p.dilations[1];
                if (sy < 0 || sy >= h || sx < 0 || sx >= wd) continue;
                acc += x.data[((in * c + g * icg + i) * h + sy) * wd + sx] *
                       w.data[((o * icg + i) * kh + ky) * kw + kx];
              }
          y.data[((in * oc + o) * oh + yy) * ow + xx] =
              relu ? std::max(acc, 0.0f) : acc;
        }
  return y;
}

Tensor MaxPool(const Tensor& x, const std::vector<int64_t>& out_hw, const PoolParams& p) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
  Tensor y{{n, c, out_hw[0], out_hw[1]}, {}};
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t yy = 0; yy < out_hw[0]; ++yy)
      for (int64_t xx = 0; xx < out_hw[1]; ++xx) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t ky = 0; ky < p.kernel[0]; ++ky)
          for (int64_t kx = 0; kx < p.kernel[1]; ++kx) {
            const int64_t sy = yy * p.strides[0] - p.pads_begin[0] + ky;
            const int64_t sx = xx * p.strides[1] - p.pads_begin[1] + kx;
            if (sy >= 0 && sy < h && sx >= 0 && sx < w) m = std::max(m, x.data[(i * h + sy) * w + sx]);
          }
        y.data.push_back(m);
      }
  return y;
}

Tensor Gemm(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t n = x.shape[0], k = x.data.size() / n, oc = w.shape[0];
  Tensor y{{n, oc}, {}};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < oc; ++o) {
      float acc = b.data[o];
      for (int64_t j = 0; j < k; ++j) acc += x.data[i * k + j] * w.data[o * k + j];
      y.data.push_back(acc);
    }
  return y;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f) << "element " << i;
}

struct Case {
  int64_t group, stride, dilation;
  std::vector<int64_t> pads_begin, pads_end;
  bool ceil_mode;
};

class OpsReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(OpsReferenceTest, ConvReluMaxPoolFlattenGemmMatchNaiveLoops) {
  const Case& k = GetParam();
  std::mt19937 rng(42);
  const int64_t n = 3, c = 4, h = 11, w = 10, oc = 6, classes = 5;
  ConvParams conv;
  conv.kernel = {3, 3};
  conv.strides = {k.stride, k.stride};
  conv.dilations = {k.dilation, k.dilation};
  conv.pads_begin = k.pads_begin;
  conv.pads_end = k.pads_end;
  conv.group = k.group;
  conv.has_bias = true;
  PoolParams pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  pool.pads_begin = {1, 0};
  pool.pads_end = {0, 0};
  pool.ceil_mode = k.ceil_mode;

  Graph g;
  g.inputs.push_back({"x", {-1, c, h, w}});
  g.initializers["cw"] = {{oc, c / k.group, 3, 3}, Random(oc * (c / k.group) * 9, rng)};
  g.initializers["cb"] = {{oc}, Random(oc, rng)};
  g.nodes.push_back({"conv", {"x", "cw", "cb"}, {"c"}, conv});
  g.nodes.push_back({"relu", {"c"}, {"r"}, EltwiseParams{}});
  g.nodes.push_back({"pool", {"r"}, {"p"}, pool});
  g.nodes.push_back({"flatten", {"p"}, {"f"}, FlattenParams{}});
  auto shapes = InferShapes(g, n);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  const Shape pooled = (*shapes)["p"];
  const int64_t features = NumElements(pooled) / n;
  g.initializers["gw"] = {{classes, features}, Random(classes * features, rng)};
  g.initializers["gb"] = {{classes}, Random(classes, rng)};
  g.nodes.push_back({"gemm", {"f", "gw", "gb"}, {"y"}, GemmParams{true, {}}});
  g.outputs.push_back({"y", {-1, classes}});

  Tensor x{{n, c, h, w}, Random(n * c * h * w, rng)};
  Tensor expected = Gemm(MaxPool(Conv(x, g.initializers["cw"], g.initializers["cb"], conv, true),
                                 {pooled[2], pooled[3]}, pool),
                         g.initializers["gw"], g.initializers["gb"]);

  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->graph().nodes.size(), 4u) << "Relu should be fused into the Conv";
  auto ctx = (*model)->CreateContext();
  std::vector<Tensor> out;
  ASSERT_TRUE((*model)->Run(*ctx, n, x.data, &out).ok());
  ASSERT_EQ(out[0].shape, (Shape{n, classes}));
  ExpectNear(out[0].data, expected.data);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, OpsReferenceTest,
    ::testing::Values(Case{1, 1, 1, {0, 0}, {0, 0}, false},   // plain
                      Case{2, 1, 1, {1, 1}, {1, 1}, false},   // groups, same pads
                      Case{1, 2, 1, {1, 0}, {2, 1}, true},    // stride, asymmetric pads, ceil
                      Case{2, 1, 2, {2, 2}, {2, 2}, true}));  // dilation

// A 3x3 convolution with bias whose output is the size of its input.
ConvParams SameSizeConv3x3() {
  ConvParams conv;
  conv.kernel = {3, 3};
  conv.strides = {1, 1};
  conv.dilations = {1, 1};
  conv.pads_begin = {1, 1};
  conv.pads_end = {1, 1};
  conv.has_bias = true;
  return conv;
}

// What oneDNN 2.6 calls avx512_core, which its fp32 Winograd kernels need.
bool IsAvx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// A 3x3, stride-1 convolution whose transformed weights fit the budget
// (here beside a large Gemm that only makes room) runs as Winograd. Batch 1
// and batch 3 take different Winograd kernels whose weights are in
// different layouts: the second plan must still find weights to transform.
TEST(WinogradTest, ThreeByThreeConvRunsAsWinogradAndMatchesNaiveLoop) {
  if (!IsAvx512()) GTEST_SKIP() << "oneDNN 2.6 has fp32 Winograd kernels only for AVX-512";
  std::mt19937 rng(11);
  const int64_t c = 16, oc = 32, hw = 28, classes = 64, features = oc * hw * hw;
  const ConvParams conv = SameSizeConv3x3();
  Graph g;
  g.inputs.push_back({"x", {-1, c, hw, hw}});
  g.initializers["cw"] = {{oc, c, 3, 3}, Random(oc * c * 9, rng)};
  g.initializers["cb"] = {{oc}, Random(oc, rng)};
  g.initializers["gw"] = {{classes, features}, Random(classes * features, rng)};
  g.initializers["gb"] = {{classes}, Random(classes, rng)};
  g.nodes.push_back({"conv", {"x", "cw", "cb"}, {"c"}, conv});
  g.nodes.push_back({"relu", {"c"}, {"r"}, EltwiseParams{}});
  g.nodes.push_back({"flatten", {"r"}, {"f"}, FlattenParams{}});
  g.nodes.push_back({"gemm", {"f", "gw", "gb"}, {"y"}, GemmParams{true, {}}});
  g.outputs.push_back({"r", {-1, oc, hw, hw}});
  g.outputs.push_back({"y", {-1, classes}});
  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  for (const int64_t n : {1, 3}) {
    SCOPED_TRACE(n);
    auto kernels = (*model)->Kernels(n);
    ASSERT_TRUE(kernels.ok()) << kernels.status();
    std::string conv_kernel;
    for (const auto& [label, kernel] : *kernels) {
      if (label == "conv") conv_kernel = kernel;
    }
    EXPECT_NE(conv_kernel.find("wino"), std::string::npos) << conv_kernel;
    Tensor x{{n, c, hw, hw}, Random(n * c * hw * hw, rng)};
    std::vector<Tensor> out;
    ASSERT_TRUE((*model)->Run(*ctx, n, x.data, &out).ok());
    ExpectNear(out[0].data, Conv(x, g.initializers["cw"], g.initializers["cb"], conv, true).data);
  }
}

Tensor Pad(const Tensor& x, const PadParams& p) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t oh = h + p.pads_begin[0] + p.pads_end[0], ow = w + p.pads_begin[1] + p.pads_end[1];
  Tensor y{{n, c, oh, ow}, std::vector<float>(n * c * oh * ow, p.value)};
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx) {
        y.data[(i * oh + yy + p.pads_begin[0]) * ow + xx + p.pads_begin[1]] = x.data[(i * h + yy) * w + xx];
      }
  return y;
}

class PadReferenceTest : public ::testing::TestWithParam<float> {};

// A Pad before a MaxPool cannot fold (max pooling pads with -inf, not the
// value), so it runs as its own step, here on a Conv's blocked output.
TEST_P(PadReferenceTest, UnfoldedPadMatchesNaiveLoop) {
  std::mt19937 rng(7);
  const int64_t n = 2, c = 3, h = 7, w = 6, oc = 8;
  const ConvParams conv = SameSizeConv3x3();
  const PadParams pad{{2, 0}, {1, 3}, GetParam()};
  PoolParams pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  pool.pads_begin = {0, 0};
  pool.pads_end = {0, 0};

  Graph g;
  g.inputs.push_back({"x", {-1, c, h, w}});
  g.initializers["cw"] = {{oc, c, 3, 3}, Random(oc * c * 9, rng)};
  g.initializers["cb"] = {{oc}, Random(oc, rng)};
  g.nodes.push_back({"conv", {"x", "cw", "cb"}, {"c"}, conv});
  g.nodes.push_back({"pad", {"c"}, {"padded"}, pad});
  g.nodes.push_back({"pool", {"padded"}, {"y"}, pool});
  g.outputs.push_back({"y", {-1, oc, 5, 4}});

  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->graph().nodes.size(), 3u) << "the Pad must not fold into a MaxPool";
  auto ctx = (*model)->CreateContext();
  std::vector<Tensor> out;
  // A batch of NaNs first: the padding must not keep what the arena held.
  const std::vector<float> nans(n * c * h * w, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE((*model)->Run(*ctx, n, nans, &out).ok());
  Tensor x{{n, c, h, w}, Random(n * c * h * w, rng)};
  ASSERT_TRUE((*model)->Run(*ctx, n, x.data, &out).ok());
  const Tensor padded = Pad(Conv(x, g.initializers["cw"], g.initializers["cb"], conv, false), pad);
  const Tensor expected = MaxPool(padded, {5, 4}, pool);
  ASSERT_EQ(out[0].shape, (Shape{n, oc, 5, 4}));
  ExpectNear(out[0].data, expected.data);
}

INSTANTIATE_TEST_SUITE_P(Values, PadReferenceTest, ::testing::Values(0.0f, -2.5f, 3.0f));

}  // namespace
}  // namespace cnnserve::engine
