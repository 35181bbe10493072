// cnnserve-run: runs one batch through a model, .npy in, .npy out.
//   cnnserve-run --model=PATH.onnx|zoo:NAME --input=X.npy --output=Y.npy [--threads=N]
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "engine/model.h"
#include "tools/npy.h"

ABSL_FLAG(std::string, model, "", "an .onnx file or zoo:NAME");
ABSL_FLAG(std::string, input, "", "float32 NCHW .npy input");
ABSL_FLAG(std::string, output, "", "where to write the first output as .npy");
ABSL_FLAG(int, threads, 0, "OpenMP threads (0: all cores)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cnnserve-run --model=M --input=X.npy --output=Y.npy [--threads=N]");
  absl::ParseCommandLine(argc, argv);
  auto fail = [](const absl::Status& s) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  };
  auto model = cnnserve::engine::Model::Load(absl::GetFlag(FLAGS_model));
  if (!model.ok()) return fail(model.status());
  auto input = cnnserve::tools::ReadNpy(absl::GetFlag(FLAGS_input));
  if (!input.ok()) return fail(input.status());
  if (input->shape.empty()) return fail(absl::InvalidArgumentError("the input is a scalar"));
  auto ctx = (*model)->CreateContext(absl::GetFlag(FLAGS_threads));
  std::vector<cnnserve::engine::Tensor> outputs;
  absl::Status s = (*model)->Run(*ctx, input->shape[0], input->data, &outputs);
  if (!s.ok()) return fail(s);
  s = cnnserve::tools::WriteNpy(absl::GetFlag(FLAGS_output), outputs[0]);
  if (!s.ok()) return fail(s);
  return 0;
}
