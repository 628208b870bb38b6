// The agent's framed port (docs/protocol.md, "The framed port"):
// Agent.Execute served over framed TCP (rpc/frame_server.h, started by
// StartFramedFromFlags) beside the gRPC port, each call run on the thread
// that read it.
#ifndef TXCOORD_AGENT_FRAMED_PORT_H_
#define TXCOORD_AGENT_FRAMED_PORT_H_

#include "agent/agent_service.h"
#include "common/inflight.h"
#include "rpc/access_policy.h"
#include "rpc/frame_server.h"

namespace txcoord::participant {

// Runs each framed Execute on `service` (which must outlive the server),
// checked against `policy` (nullptr: no checks) and counted in `inflight`
// (nullptr: not counted).
FrameServer::Handler ExecuteFrameHandler(AgentService* service, const AccessPolicy* policy,
                                         InflightTracker* inflight);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_FRAMED_PORT_H_
