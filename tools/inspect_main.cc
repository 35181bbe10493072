// cnnserve-inspect: per-layer table of a model after the graph passes, with
// the oneDNN kernel each layer runs at that batch size on all cores.
//   cnnserve-inspect MODEL [--batch=N]
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "engine/cost.h"
#include "engine/model.h"

ABSL_FLAG(int64_t, batch, 1, "batch size for shapes, MACs and activations");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cnnserve-inspect MODEL.onnx|zoo:NAME [--batch=N]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "usage: cnnserve-inspect MODEL.onnx|zoo:NAME [--batch=N]\n";
    return 2;
  }
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  auto model = cnnserve::engine::Model::Load(args[1]);
  if (!model.ok()) {
    std::cerr << "error: " << model.status().message() << "\n";
    return 1;
  }
  auto layers = cnnserve::engine::GraphCost((*model)->graph(), batch);
  auto arena = (*model)->ActivationBytes(batch);
  auto steps = (*model)->Kernels(batch);
  for (const absl::Status& s : {layers.status(), arena.status(), steps.status()}) {
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return 1;
    }
  }
  const std::map<std::string, std::string> kernels(steps->begin(), steps->end());
  int64_t params = 0, macs = 0, acts = 0;
  for (const auto& l : *layers) {
    params += l.params;
    macs += l.macs;
    acts += l.activation_bytes;
  }
  auto pct = [](int64_t part, int64_t whole) { return whole ? 100.0 * part / whole : 0.0; };
  std::printf("%-28s %-22s %-18s %12s %6s %14s %6s %12s %6s  %s\n", "layer", "op", "output",
              "params", "%", "MACs", "%", "act bytes", "%", "kernel");
  for (const auto& l : *layers) {
    // Layers folded into another step's kernel (a fused Relu) have none.
    const auto kernel = kernels.find(l.name);
    std::printf("%-28.28s %-22.22s %-18s %12lld %5.1f%% %14lld %5.1f%% %12lld %5.1f%%  %s\n",
                l.name.c_str(), l.op.c_str(), cnnserve::engine::ShapeToString(l.output).c_str(),
                static_cast<long long>(l.params), pct(l.params, params),
                static_cast<long long>(l.macs), pct(l.macs, macs),
                static_cast<long long>(l.activation_bytes), pct(l.activation_bytes, acts),
                kernel == kernels.end() ? "-" : kernel->second.c_str());
  }
  std::printf("\ntotal: %zu layers, %lld parameters (%.1f MB fp32), %.3f GMACs, %.1f MB activations "
              "at batch %lld\n",
              layers->size(), static_cast<long long>(params), params * 4.0 / 1e6, macs / 1e9,
              acts / 1e6, static_cast<long long>(batch));
  std::printf("activation arena after liveness planning: %.1f MB (%.1f MB without reuse)\n",
              arena->first / 1e6, arena->second / 1e6);
  std::printf("weights in the layouts the plans use: %.1f MB\n", (*model)->WeightBytes() / 1e6);
  return 0;
}
