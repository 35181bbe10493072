// cnnserve-client: talks to a cnnserve (or any KServe v2) server.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/classify.h"
#include "client/credentials.h"
#include "client/health.h"
#include "client/metadata.h"
#include "client/perf.h"
#include "client/repository.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, server, "localhost:8001", "gRPC address of the server, HOST:PORT");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA to verify the server's TLS certificate (enables TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate, for servers that require mTLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, token_file, "", "File holding a bearer token to send (needs --tls_ca)");
ABSL_FLAG(std::string, lb, "pick_first",
          "gRPC load balancing: pick_first, or round_robin to spread requests over every address "
          "the name resolves to (e.g. --server=dns:///cnnserve-grpc.cnnserve.svc.cluster.local:8001, "
          "a headless Service)");
ABSL_FLAG(std::string, model, "", "classify: model name");
ABSL_FLAG(std::string, version, "", "classify: model version (default: the server's)");
ABSL_FLAG(int, top_k, 5, "classify: classes to print per image");
ABSL_FLAG(int, batch, 1, "classify: images per request");
ABSL_FLAG(bool, raw, false, "classify: preprocess images here and send FP32 tensors");
ABSL_FLAG(bool, json, false, "classify, metadata, models: print JSON");
ABSL_FLAG(std::string, concurrency, "1", "perf: in-flight requests per step, 1,2,4 or 1:32:x2");
ABSL_FLAG(std::string, rate, "", "perf: open loop at these requests/s, e.g. 10,20,40 (instead of --concurrency)");
ABSL_FLAG(std::string, arrivals, "constant", "perf: open-loop arrivals, constant or poisson");
ABSL_FLAG(double, duration_s, 5, "perf: seconds per measurement window");
ABSL_FLAG(int64_t, requests, 0, "perf: answers per measurement window instead of --duration_s");
ABSL_FLAG(double, stability, 0.10, "perf: two windows agree within this fraction to end a step");
ABSL_FLAG(int, max_windows, 4, "perf: most measurement windows per step");
ABSL_FLAG(std::string, metrics_url, "", "perf: the server's /metrics, e.g. http://localhost:8000/metrics");
ABSL_FLAG(std::string, plot, "", "perf: write an SVG of latency against throughput here");
ABSL_FLAG(double, slo_p99_ms, 0, "perf: report the highest throughput whose p99 meets this");
ABSL_FLAG(double, warmup_s, 1, "perf: unmeasured seconds before each step");
ABSL_FLAG(std::string, images, "", "perf: folder of JPEG/PNG files sent as BYTES (default: random FP32)");
ABSL_FLAG(int, deadline_ms, 0, "perf: per-request deadline (0: none)");
ABSL_FLAG(std::string, json_file, "", "perf: also write the steps as JSON to this file");
ABSL_FLAG(std::string, csv_file, "", "perf: also write the steps as CSV to this file");

namespace {

constexpr char kUsage[] =
    "cnnserve-client COMMAND [flags]\n"
    "  classify FILE|DIR ... --model=M [--version=V] [--top_k=5] [--batch=N] [--json] [--raw]\n"
    "  health\n"
    "  metadata MODEL [--version=V] [--json]\n"
    "  models [--json]            the repository index: each model version's state\n"
    "  load MODEL | unload MODEL  (server in --model_control_mode=explicit)\n"
    "  perf --model=M [--concurrency=1:32:x2 | --rate=10,20 [--arrivals=poisson]] [--batch=N]\n"
    "       [--duration_s=5 | --requests=N] [--warmup_s=1] [--stability=0.1] [--max_windows=4]\n"
    "       [--images=DIR] [--deadline_ms=D] [--metrics_url=URL] [--slo_p99_ms=X]\n"
    "       [--json_file=F] [--csv_file=F] [--plot=F.svg]\n"
    "Common flags: --server=HOST:PORT (default localhost:8001), --lb=round_robin,\n"
    "  --tls_ca=CA.pem [--tls_cert=C.pem --tls_key=K.pem] [--token_file=F]";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  const std::string command = positional[1];
  const std::string lb = absl::GetFlag(FLAGS_lb);
  if (lb != "pick_first" && lb != "round_robin") {
    std::cerr << "error: --lb must be pick_first or round_robin, not '" << lb << "'\n";
    return 2;
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetLoadBalancingPolicyName(lb);
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto credentials = cnnserve::client::MakeCredentials(
      absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
      absl::GetFlag(FLAGS_token_file));
  if (!credentials.ok()) {
    std::cerr << "error: " << credentials.status().message() << "\n";
    return 2;
  }
  // A failed connect attempt is retried after 100 ms rather than gRPC's 1 s.
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), *credentials, channel_args);
  // Connect before the command's first call, which would fail at once if
  // the first attempt did. On a busy machine one attempt to a live server
  // can fail: fresh Debian roots have shown "failed to connect ... No such
  // file or directory" twice, mid-test. Waiting up to 2 s rides over that.
  // A server that is down still gets the command's own UNAVAILABLE error,
  // 2 s later.
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(2));
  absl::Status status;
  if (command == "classify") {
    cnnserve::client::ClassifyOptions options;
    options.model = absl::GetFlag(FLAGS_model);
    options.version = absl::GetFlag(FLAGS_version);
    options.top_k = absl::GetFlag(FLAGS_top_k);
    options.batch = absl::GetFlag(FLAGS_batch);
    options.json = absl::GetFlag(FLAGS_json);
    options.raw = absl::GetFlag(FLAGS_raw);
    options.paths.assign(positional.begin() + 2, positional.end());
    status = cnnserve::client::Classify(channel, options, std::cout);
  } else if (command == "health") {
    status = cnnserve::client::Health(channel, std::cout);
  } else if (command == "metadata") {
    status = positional.size() == 3
                 ? cnnserve::client::Metadata(channel, positional[2], absl::GetFlag(FLAGS_version),
                                              absl::GetFlag(FLAGS_json), std::cout)
                 : absl::InvalidArgumentError("usage: cnnserve-client metadata MODEL");
  } else if (command == "models") {
    status = cnnserve::client::Models(channel, absl::GetFlag(FLAGS_json), std::cout);
  } else if (command == "load" || command == "unload") {
    if (positional.size() != 3) {
      status = absl::InvalidArgumentError("usage: cnnserve-client " + command + " MODEL");
    } else if (command == "load") {
      status = cnnserve::client::LoadModel(channel, positional[2], std::cout);
    } else {
      status = cnnserve::client::UnloadModel(channel, positional[2], std::cout);
    }
  } else if (command == "perf") {
    cnnserve::client::PerfOptions options;
    options.model = absl::GetFlag(FLAGS_model);
    options.version = absl::GetFlag(FLAGS_version);
    options.batch = absl::GetFlag(FLAGS_batch);
    options.duration_s = absl::GetFlag(FLAGS_duration_s);
    options.warmup_s = absl::GetFlag(FLAGS_warmup_s);
    options.images = absl::GetFlag(FLAGS_images);
    options.deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
    options.json_path = absl::GetFlag(FLAGS_json_file);
    options.csv_path = absl::GetFlag(FLAGS_csv_file);
    options.plot_path = absl::GetFlag(FLAGS_plot);
    options.metrics_url = absl::GetFlag(FLAGS_metrics_url);
    options.requests = absl::GetFlag(FLAGS_requests);
    options.stability = absl::GetFlag(FLAGS_stability);
    options.max_windows = absl::GetFlag(FLAGS_max_windows);
    options.slo_p99_ms = absl::GetFlag(FLAGS_slo_p99_ms);
    options.progress = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    const std::string arrivals = absl::GetFlag(FLAGS_arrivals);
    if (arrivals != "constant" && arrivals != "poisson") {
      status = absl::InvalidArgumentError("--arrivals must be constant or poisson, not '" + arrivals + "'");
    }
    options.poisson = arrivals == "poisson";
    if (status.ok() && !absl::GetFlag(FLAGS_rate).empty()) {
      auto rates = cnnserve::client::ParseRates(absl::GetFlag(FLAGS_rate));
      status = rates.status();
      if (status.ok()) options.rates = *rates;
    } else if (status.ok()) {
      auto levels = cnnserve::client::ParseConcurrency(absl::GetFlag(FLAGS_concurrency));
      status = levels.status();
      if (status.ok()) options.concurrency = *levels;
    }
    if (status.ok()) status = cnnserve::client::Perf(channel, options, std::cout).status();
  } else {
    std::cerr << "unknown command '" << command << "'\n" << kUsage << "\n";
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
