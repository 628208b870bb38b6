#include "coordinator/framed_port.h"

#include "absl/synchronization/notification.h"
#include "rpc/frame.h"
#include "rpc/frame_handler.h"

namespace txcoord::coordinator {

FrameServer::Handler CommitFrameHandler(CoordinatorService* service, const AccessPolicy* policy,
                                        InflightTracker* inflight) {
  return UnaryFrameHandler<v1::CommitRequest, v1::CommitResponse>(
      FrameMethod::kCoordinatorCommit, "/txcoord.v1.Coordinator/Commit", policy, inflight,
      [service](const v1::CommitRequest& request, absl::Time deadline,
                v1::CommitResponse* response) {
        absl::Notification decided;
        absl::Status status;
        service->ServeCommit(request, deadline, response, [&](absl::Status answer) {
          status = std::move(answer);
          decided.Notify();
        });
        decided.WaitForNotification();
        return status;
      });
}

}  // namespace txcoord::coordinator
