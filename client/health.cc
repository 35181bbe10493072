#include "client/health.h"

#include <chrono>

#include "client/grpc_error.h"
#include "engine/status_macros.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "health.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace cnnserve::client {

absl::Status Health(const std::shared_ptr<grpc::Channel>& channel, std::ostream& out) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
  inference::ServerLiveResponse live;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    RETURN_IF_ERROR(FromGrpc("ServerLive", stub->ServerLive(&context, {}, &live)));
  }
  inference::ServerReadyResponse ready;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    RETURN_IF_ERROR(FromGrpc("ServerReady", stub->ServerReady(&context, {}, &ready)));
  }
  // grpc.health.v1, as Kubernetes' probes see it.
  grpc::health::v1::HealthCheckResponse grpc_health;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    RETURN_IF_ERROR(FromGrpc("Health.Check",
                             grpc::health::v1::Health::NewStub(channel)->Check(&context, {},
                                                                               &grpc_health)));
  }
  out << "live: " << (live.live() ? "yes" : "no") << "\nready: " << (ready.ready() ? "yes" : "no")
      << "\ngrpc health: "
      << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(grpc_health.status()) << "\n";
  // Each model's readiness, from the repository index when the server has
  // that extension (cnnserve and Triton do; plain KServe servers may not).
  inference::RepositoryIndexResponse index;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    if (stub->RepositoryIndex(&context, {}, &index).ok()) {
      for (const auto& m : index.models()) {
        out << "model " << m.name() << (m.version().empty() ? "" : " version " + m.version())
            << ": " << m.state() << (m.reason().empty() ? "" : " (" + m.reason() + ")") << "\n";
      }
    }
  }
  if (!ready.ready()) return absl::UnavailableError("the server is not ready");
  return absl::OkStatus();
}

}  // namespace cnnserve::client
