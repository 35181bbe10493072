// cnnserve: serves the models of a repository over gRPC (KServe v2) and HTTP.
#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "server/log.h"
#include "server/model_repository.h"
#include "server/preemption_ticker.h"
#include "server/server.h"
#include "server/thread_priority.h"

ABSL_FLAG(std::string, model_repository, "models",
          "Directory of <model>/[config.pbtxt] and <model>/<version>/model.onnx");
ABSL_FLAG(std::string, model_control_mode, "none",
          "none: load every model at start; poll: also follow the repository's changes every "
          "--repository_poll_secs; explicit: load only --load_model and what "
          "RepositoryModelLoad asks for");
ABSL_FLAG(std::vector<std::string>, load_model, {},
          "In explicit mode, models to load at start (comma-separated; * for all)");
ABSL_FLAG(int, repository_poll_secs, 15, "In poll mode, seconds between repository scans");
ABSL_FLAG(int64_t, max_message_bytes, 64 << 20,
          "Largest gRPC message accepted or sent; larger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on");
ABSL_FLAG(int, grpc_port, 8001, "gRPC port (0: any free port)");
ABSL_FLAG(int, http_port, 8000, "HTTP port for health (0: any free port)");
ABSL_FLAG(int64_t, max_batch_size, 32,
          "Largest batch, in items, for models whose config.pbtxt does not set max_batch_size");
ABSL_FLAG(int64_t, max_image_pixels, 64 << 20,
          "Largest image (width x height) a request may send; refused from its header");
ABSL_FLAG(int, max_concurrent_streams, 1024, "Most concurrent gRPC calls per connection");
ABSL_FLAG(double, autotune_budget_secs, 10,
          "Time a model with instance_group { count: 0 } spends at load choosing its instances "
          "and threads (cached next to the model for the next start)");
ABSL_FLAG(int, handshake_timeout_secs, 10,
          "A connection that has not completed its HTTP/2 (and TLS) handshake by then is closed");
ABSL_FLAG(int, keepalive_secs, 60,
          "Ping idle client connections this often; close those whose peer does not answer");
ABSL_FLAG(int, keepalive_timeout_secs, 20,
          "How long a keepalive ping may go unanswered before the connection is closed");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve gRPC over TLS, and the HTTP health/metrics port as HTTPS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA: gRPC inference and control calls need a client certificate it signed (mTLS)");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token inference calls must present ('authorization: Bearer T')");
ABSL_FLAG(std::string, control_token_file, "",
          "File holding a bearer token the repository control calls must present");
ABSL_FLAG(int, exit_timeout_secs, 30, "On SIGTERM/SIGINT, how long to wait for accepted requests");
ABSL_FLAG(std::string, batch_thread_policy, "nice",
          "How inference threads yield to the RPC threads: nice (nice +5) or idle (SCHED_IDLE: they "
          "run only when no other thread of the server's cgroup wants a core, so refusals and health "
          "checks go ahead of batches, within a kernel tick (see --preemption_tick_us); for a server "
          "with its own cgroup, as in a container, "
          "not on a shared host, where any busy process would starve inference)");
ABSL_FLAG(int, preemption_tick_us, 0,
          "While batches run, wake every CPU the server may use this often (us), so that an RPC "
          "thread waits at most about that long behind a batch thread for a core instead of up to a "
          "kernel tick (4 ms at 250 Hz). Under 2x overload (batch threads idle) 2000 took the refusal "
          "p99 from 4.1 to 2.7 ms for about 1.5% of throughput (1000: 4.8 to 2.9 ms for 5%). One "
          "thread per allowed CPU: for a server with CPUs of its own (a cpuset). 0: off; else "
          "100-100000");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");
ABSL_FLAG(bool, access_log, false, "Log every ModelInfer: model, version, code, items, timings, peer");

namespace cs = cnnserve::server;

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cnnserve --model_repository=DIR [--grpc_port=P] [--http_port=Q]");
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = cs::SetLogLevel(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    cs::Log(cs::Severity::kError, "bad flag", {{"reason", std::string(s.message())}});
    return 2;
  }

  absl::StatusOr<cs::BatchThreadPolicy> policy =
      cs::ParseBatchThreadPolicy(absl::GetFlag(FLAGS_batch_thread_policy));
  if (!policy.ok()) {
    cs::Log(cs::Severity::kError, "bad flag", {{"reason", std::string(policy.status().message())}});
    return 2;
  }
  cs::SetBatchThreadPolicy(*policy);
  absl::StatusOr<absl::Duration> tick = cs::ParsePreemptionTick(absl::GetFlag(FLAGS_preemption_tick_us));
  if (!tick.ok()) {
    cs::Log(cs::Severity::kError, "bad flag", {{"reason", std::string(tick.status().message())}});
    return 2;
  }
  // Before any thread starts: every thread inherits it.
  cs::UseShortSchedulerSlices();
  // From the main thread, so that the ticking threads run as serving threads.
  if (*tick > absl::ZeroDuration()) cs::StartProcessPreemptionTicker(*tick, cs::AllowedCpus());
  // One malloc arena per core instead of glibc's 8 per core: request buffers (600 KB
  // for one FP32 image) are allocated on whichever gRPC thread runs and
  // freed on a batch thread, and each arena keeps what it was given. Under
  // overload the extra arenas made RSS creep up by 7-8% in 10 minutes.
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  cs::Server::Options options;
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  options.host = absl::GetFlag(FLAGS_host);
  options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  options.http_port = absl::GetFlag(FLAGS_http_port);
  options.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.exit_timeout = absl::Seconds(absl::GetFlag(FLAGS_exit_timeout_secs));
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.model_control_mode = absl::GetFlag(FLAGS_model_control_mode);
  options.load_models = absl::GetFlag(FLAGS_load_model);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_image_pixels = absl::GetFlag(FLAGS_max_image_pixels);
  options.autotune_budget = absl::Seconds(absl::GetFlag(FLAGS_autotune_budget_secs));
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.handshake_timeout = absl::Seconds(absl::GetFlag(FLAGS_handshake_timeout_secs));
  options.keepalive = absl::Seconds(absl::GetFlag(FLAGS_keepalive_secs));
  options.keepalive_timeout = absl::Seconds(absl::GetFlag(FLAGS_keepalive_timeout_secs));
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.control_token_file = absl::GetFlag(FLAGS_control_token_file);
  if (absl::GetFlag(FLAGS_repository_poll_secs) < 1) {
    cs::Log(cs::Severity::kError, "bad flag", {{"reason", "--repository_poll_secs must be at least 1"}});
    return 2;
  }
  options.repository_poll = absl::Seconds(absl::GetFlag(FLAGS_repository_poll_secs));
  auto server = cs::Server::Start(options);
  if (!server.ok()) {
    cs::Log(cs::Severity::kError, "cannot start", {{"reason", server.status().ToString()}});
    return 1;
  }
  int ready = 0, total = 0;
  for (const auto& entry : (*server)->repository().Index(/*ready_only=*/false)) {
    ++total;
    ready += entry.state == "READY";
  }
  cs::Log(cs::Severity::kInfo, "cnnserve listening",
          {{"grpc", absl::StrCat(options.host, ":", (*server)->grpc_port())},
           {"http", absl::StrCat(options.host, ":", (*server)->http_port())},
           {"versions_ready", absl::StrCat(ready, "/", total)},
           {"model_control_mode", options.model_control_mode},
           {"repository", options.model_repository}});

  int signal = 0;
  sigwait(&stop_signals, &signal);
  cs::Log(cs::Severity::kInfo, "draining", {{"signal", strsignal(signal)}});
  (*server)->Shutdown();
  return 0;
}
