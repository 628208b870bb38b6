// The coordinator's framed port (docs/protocol.md, "The framed port"):
// Coordinator.Commit served over framed TCP (rpc/frame_server.h, started by
// StartFramedFromFlags) beside the gRPC port. The connection's thread waits
// for the decision that the gRPC method waits for without a thread.
#ifndef TXCOORD_COORDINATOR_FRAMED_PORT_H_
#define TXCOORD_COORDINATOR_FRAMED_PORT_H_

#include "common/inflight.h"
#include "coordinator/coordinator_service.h"
#include "rpc/access_policy.h"
#include "rpc/frame_server.h"

namespace txcoord::coordinator {

// Runs each framed Commit on `service` (which must outlive the server),
// checked against `policy` (nullptr: no checks) and counted in `inflight`
// (nullptr: not counted).
FrameServer::Handler CommitFrameHandler(CoordinatorService* service, const AccessPolicy* policy,
                                        InflightTracker* inflight);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_FRAMED_PORT_H_
