#include "agent/framed_port.h"

#include "rpc/frame.h"
#include "rpc/frame_handler.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {

FrameServer::Handler ExecuteFrameHandler(AgentService* service, const AccessPolicy* policy,
                                         InflightTracker* inflight) {
  return UnaryFrameHandler<v1::ExecuteRequest, v1::ExecuteResponse>(
      FrameMethod::kAgentExecute, "/txcoord.v1.Agent/Execute", policy, inflight,
      [service](const v1::ExecuteRequest& request, absl::Time deadline,
                v1::ExecuteResponse* response) {
        return FromGrpcStatus(service->Execute(request, deadline, response));
      });
}

}  // namespace txcoord::participant
