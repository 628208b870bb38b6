// How txagent talks to its coordinator: Enlist branches (the Enlister the
// participant core calls) and ask the outcome of in-doubt branches.
#ifndef TXCOORD_PARTICIPANT_COORDINATOR_LINK_H_
#define TXCOORD_PARTICIPANT_COORDINATOR_LINK_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "participant/participant.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::participant {

enum class RemoteOutcome { kCommitted, kAborted, kPending };

// Thread-safe.
class CoordinatorLink final : public Enlister {
 public:
  CoordinatorLink(std::shared_ptr<grpc::Channel> channel, std::string participant_name,
                  absl::Duration rpc_timeout);
  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  // Where the coordinator reaches this agent; set once the server listens.
  void set_endpoint(const std::string& endpoint);

  absl::Status Enlist(const std::string& txid, uint64_t branch_token, bool prepared) override;
  absl::StatusOr<RemoteOutcome> QueryOutcome(const std::string& txid);

 private:
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  const std::string name_;
  const absl::Duration rpc_timeout_;
  absl::Mutex mu_;
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_COORDINATOR_LINK_H_
