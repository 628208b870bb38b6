// The handlers of a framed port (rpc/frame_server.h). UnaryFrameHandler
// serves one method: checks the method number and the caller's role as the
// gRPC port would, parses the request, runs the call and encodes its
// answer. Each daemon gives it the call its gRPC service makes (txagent:
// Agent.Execute and the Participant calls, txcoord: Coordinator.Commit);
// FrameMethods serves several on one port.
//
//   FrameServer::Handler handler = UnaryFrameHandler<v1::ExecuteRequest, v1::ExecuteResponse>(
//       FrameMethod::kAgentExecute, "/txcoord.v1.Agent/Execute", policy, &inflight,
//       [&](const v1::ExecuteRequest& request, absl::Time deadline, v1::ExecuteResponse* out) {
//         return FromGrpcStatus(service.Execute(request, deadline, out));
//       });
#ifndef TXCOORD_RPC_FRAME_HANDLER_H_
#define TXCOORD_RPC_FRAME_HANDLER_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/inflight.h"
#include "rpc/access_policy.h"
#include "rpc/frame.h"
#include "rpc/frame_server.h"

namespace txcoord {

// `grpc_method` ("/txcoord.v1.Agent/Execute") names the method for the
// access policy (nullptr: no checks) and in refusals. `inflight` counts
// each call, so that a daemon's drain waits for it (nullptr: not
// counted). `call` runs on the connection's thread with the request's
// deadline and fills the response when it returns OK.
template <typename Request, typename Response>
FrameServer::Handler UnaryFrameHandler(
    FrameMethod method, const char* grpc_method, const AccessPolicy* policy,
    InflightTracker* inflight,
    std::function<absl::Status(const Request&, absl::Time deadline, Response*)> call) {
  return [=](const FrameRequest& frame, const Caller& caller) {
    std::optional<InflightTracker::Scope> counted;
    if (inflight != nullptr) counted.emplace(inflight);
    if (frame.method != static_cast<uint8_t>(method)) {
      return EncodeAnswer(absl::UnimplementedError(
                              absl::StrCat("framed method ", frame.method, ": this port serves ",
                                           static_cast<int>(method), " (", grpc_method, ")")),
                          nullptr);
    }
    if (policy != nullptr) {
      if (absl::Status admitted = policy->Admit(grpc_method, caller); !admitted.ok()) {
        return EncodeAnswer(admitted, nullptr);
      }
    }
    Request request;
    if (!request.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
      return EncodeAnswer(absl::InvalidArgumentError(
                              absl::StrCat("a ", grpc_method, " request that does not parse")),
                          nullptr);
    }
    const absl::Time deadline = frame.timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + frame.timeout;
    Response response;
    const absl::Status status = call(request, deadline, &response);
    return EncodeAnswer(status, status.ok() ? &response : nullptr);
  };
}

// One port serving each method of `handlers` with its handler; any other
// method is answered UNIMPLEMENTED, naming those it serves.
inline FrameServer::Handler FrameMethods(
    std::vector<std::pair<FrameMethod, FrameServer::Handler>> handlers) {
  std::string served;
  for (const auto& [method, handler] : handlers) {
    absl::StrAppend(&served, served.empty() ? "" : ", ", static_cast<int>(method));
  }
  return [handlers = std::move(handlers), served](const FrameRequest& frame, const Caller& caller) {
    for (const auto& [method, handler] : handlers) {
      if (frame.method == static_cast<uint8_t>(method)) return handler(frame, caller);
    }
    return EncodeAnswer(absl::UnimplementedError(absl::StrCat("framed method ", frame.method,
                                                              ": this port serves ", served)),
                        nullptr);
  };
}

}  // namespace txcoord

#endif  // TXCOORD_RPC_FRAME_HANDLER_H_
