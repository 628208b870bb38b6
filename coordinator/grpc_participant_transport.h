// ParticipantTransport over gRPC: one channel per participant endpoint,
// kept and reused; calls use the callback API so that a Prepare fan-out
// costs no thread per branch. It translates calls and answers to and from
// protos and statuses, and sets each call's deadline; what goes alone and
// what goes in a Batch is BatchingParticipantClient's business.
#ifndef TXCOORD_COORDINATOR_GRPC_PARTICIPANT_TRANSPORT_H_
#define TXCOORD_COORDINATOR_GRPC_PARTICIPANT_TRANSPORT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/participant_transport.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {

// Thread-safe. Callbacks run on gRPC's threads, or inline when a call
// cannot start. Must outlive the completion of every call.
class GrpcParticipantTransport final : public ParticipantTransport {
 public:
  // nullptr `credentials`: insecure channels.
  explicit GrpcParticipantTransport(std::shared_ptr<grpc::ChannelCredentials> credentials);
  GrpcParticipantTransport(const GrpcParticipantTransport&) = delete;
  GrpcParticipantTransport& operator=(const GrpcParticipantTransport&) = delete;

  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
               absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) override;
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override;
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override;
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override;
  void Batch(const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
             std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) override;
  // What a participant takes (kMaxBatchEntries).
  int max_batch_entries() const override;

 private:
  v1::Participant::Stub* StubFor(const std::string& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // Commit or Abort, which share their request and response.
  void Phase2(bool commit, const std::string& endpoint, const std::string& txid,
              absl::Duration timeout, std::function<void(absl::Status)> done);

  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  absl::Mutex mu_;
  // Stubs are never removed: a Stub* stays valid for the transport's life.
  absl::flat_hash_map<std::string, std::unique_ptr<v1::Participant::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_GRPC_PARTICIPANT_TRANSPORT_H_
