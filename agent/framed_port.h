// The agent's framed port (docs/protocol.md, "The framed port"): Agent.Execute
// served over framed TCP (rpc/frame_server.h) beside the gRPC port, each
// call run on the thread that read it. Plaintext only: an agent with TLS
// keeps its services on gRPC.
#ifndef TXCOORD_AGENT_FRAMED_PORT_H_
#define TXCOORD_AGENT_FRAMED_PORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/agent_service.h"
#include "common/inflight.h"
#include "common/metrics.h"
#include "rpc/access_policy.h"
#include "rpc/frame_server.h"

namespace txcoord::participant {

struct FramedPortOptions {
  std::string listen;  // --framed_listen
  int max_connections = 256;
  // The gRPC port's settings: FAILED_PRECONDITION when it has TLS.
  bool tls = false;
  const AccessPolicy* policy = nullptr;  // nullptr: no checks
  InflightTracker* inflight = nullptr;   // counts each call, for the drain; nullptr: not counted
};

// The handler the framed port runs: decodes one frame's Execute, checks the
// caller's role, runs it on `service` and encodes the answer. Exposed for
// tests and fuzzing; StartFramedPort serves it.
FrameServer::Handler FramedPortHandler(AgentService* service, const AccessPolicy* policy,
                                       InflightTracker* inflight);

// Starts serving (prints "txagent framed listening on HOST:PORT") and adds
// its metrics to `metrics` (the server must outlive the registry's
// renders). `service` must outlive the server.
absl::StatusOr<std::unique_ptr<FrameServer>> StartFramedPort(const FramedPortOptions& options,
                                                             AgentService* service,
                                                             MetricsRegistry* metrics);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_FRAMED_PORT_H_
