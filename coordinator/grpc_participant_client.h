// ParticipantClient over gRPC: one channel per participant endpoint, kept
// and reused; calls use the callback API so that a Prepare fan-out costs no
// thread per branch.
#ifndef TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_
#define TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/participant_client.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {

// Thread-safe.
class GrpcParticipantClient final : public ParticipantClient {
 public:
  // `credentials` nullptr means insecure channels.
  explicit GrpcParticipantClient(std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  GrpcParticipantClient(const GrpcParticipantClient&) = delete;
  GrpcParticipantClient& operator=(const GrpcParticipantClient&) = delete;

  void Prepare(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
               std::function<void(absl::StatusOr<Vote>)> done) override;
  void Commit(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override;
  void Abort(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override;
  void CommitOnePhase(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override;

 private:
  v1::Participant::Stub* StubFor(const std::string& endpoint);

  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<v1::Participant::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_
