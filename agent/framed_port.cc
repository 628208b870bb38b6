#include "agent/framed_port.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/frame.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {
namespace {

constexpr char kExecuteMethod[] = "/txcoord.v1.Agent/Execute";

}  // namespace

FrameServer::Handler FramedPortHandler(AgentService* service, const AccessPolicy* policy,
                                       InflightTracker* inflight) {
  return [service, policy, inflight](const FrameRequest& frame, const Caller& caller) {
    std::optional<InflightTracker::Scope> counted;
    if (inflight != nullptr) counted.emplace(inflight);
    if (frame.method != static_cast<uint8_t>(FrameMethod::kAgentExecute)) {
      return EncodeAnswer(absl::UnimplementedError(absl::StrCat(
                              "framed method ", frame.method, ": this agent serves ",
                              static_cast<int>(FrameMethod::kAgentExecute), " (Agent.Execute)")),
                          nullptr);
    }
    if (policy != nullptr) {
      if (absl::Status admitted = policy->Admit(kExecuteMethod, caller); !admitted.ok()) {
        return EncodeAnswer(admitted, nullptr);
      }
    }
    v1::ExecuteRequest request;
    if (!request.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
      return EncodeAnswer(absl::InvalidArgumentError("an Execute request that does not parse"),
                          nullptr);
    }
    const absl::Time deadline = frame.timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + frame.timeout;
    v1::ExecuteResponse response;
    const absl::Status status = FromGrpcStatus(service->Execute(request, deadline, &response));
    return EncodeAnswer(status, status.ok() ? &response : nullptr);
  };
}

absl::StatusOr<std::unique_ptr<FrameServer>> StartFramedPort(const FramedPortOptions& options,
                                                             AgentService* service,
                                                             MetricsRegistry* metrics) {
  if (options.tls) {
    return absl::FailedPreconditionError(
        "--framed_listen serves plain TCP, and this agent's gRPC port has TLS: leave "
        "--framed_listen empty (services then run Execute over TLS on --listen)");
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--framed_max_connections must be at least 1, got ", options.max_connections));
  }
  FrameServerOptions server_options;
  server_options.name = "txagent framed";
  server_options.listen = options.listen;
  server_options.max_connections = options.max_connections;
  absl::StatusOr<std::unique_ptr<FrameServer>> server = FrameServer::Start(
      std::move(server_options), FramedPortHandler(service, options.policy, options.inflight));
  if (!server.ok()) return server.status();
  const FrameServer* serving = server->get();
  metrics->AddCounterFunction("txagent_framed_calls_total",
                              "Calls served on the framed port (--framed_listen).",
                              [serving] { return static_cast<double>(serving->calls()); });
  metrics->AddGauge("txagent_framed_connections", "Framed-port connections open.",
                    [serving] { return static_cast<double>(serving->open_connections()); });
  metrics->AddCounterFunction(
      "txagent_framed_refused_connections_total",
      "Framed-port connections refused for --framed_max_connections.",
      [serving] { return static_cast<double>(serving->refused_connections()); });
  return server;
}

}  // namespace txcoord::participant
