// ParticipantClient over gRPC: one channel per participant endpoint, kept
// and reused; calls use the callback API so that a Prepare fan-out costs no
// thread per branch.
//
// Adaptive batching: while `max_in_flight` calls to one participant are
// outstanding, further Prepare, Commit and Abort calls to it wait in a
// queue, and the first call to end sends everything queued as one Batch
// call (one RPC, one WAL sync at the participant). An idle participant is
// sent single calls at once, so a lone transaction waits for nothing; a
// busy one gets fewer, larger calls. A participant that does not know
// Batch (UNIMPLEMENTED) is sent single calls for a while, then tried again.
#ifndef TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_
#define TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/participant_client.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {

struct GrpcParticipantClientOptions {
  // nullptr: insecure channels.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Prepare/Commit/Abort calls outstanding per participant before more
  // are queued for a batch. Two: the participant can run one call's SQL
  // while the other's WAL sync is under way.
  int max_in_flight = 2;
  // Most entries in one Batch call (the participant takes up to
  // kMaxBatchEntries).
  int max_batch = 256;
  // How long a participant that answered Batch with UNIMPLEMENTED is sent
  // single calls before Batch is tried again.
  absl::Duration singles_after_unimplemented = absl::Minutes(1);
};

// Thread-safe.
class GrpcParticipantClient final : public ParticipantClient {
 public:
  explicit GrpcParticipantClient(GrpcParticipantClientOptions options = {});
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

  // Batch calls sent so far, and the entries they carried (for tests and
  // metrics).
  int64_t batches_sent();
  int64_t batched_entries();

 private:
  // One Prepare, Commit or Abort, sent alone or in a batch.
  struct Request {
    v1::BatchRequest::Kind kind = v1::BatchRequest::KIND_UNSPECIFIED;
    std::string txid;
    uint64_t branch_token = 0;
    absl::Time deadline;
    std::function<void(absl::StatusOr<Vote>)> voted;  // KIND_PREPARE
    std::function<void(absl::Status)> done;           // KIND_COMMIT, KIND_ABORT; may be null
  };
  struct Peer {
    std::unique_ptr<v1::Participant::Stub> stub;
    int in_flight = 0;
    std::deque<Request> queue;
    // Until then the participant is sent single calls: it answered Batch
    // UNIMPLEMENTED (an older agent; it may be upgraded meanwhile).
    absl::Time singles_until = absl::InfinitePast();
  };

  Peer* PeerFor(const std::string& endpoint) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Submit(const std::string& endpoint, Request request);
  // A call to `peer` ended: sends what waited, or frees its slot.
  void CallEnded(Peer* peer);
  void SendSingle(Peer* peer, Request request);
  void SendBatch(Peer* peer, std::vector<Request> requests);
  // Runs the request's callback with a status: any for Commit and Abort, a
  // failure for Prepare (a Prepare's success is a vote, given to `voted`).
  static void Answer(Request& request, const absl::Status& status);

  const GrpcParticipantClientOptions options_;
  absl::Mutex mu_;
  // Peers are never removed: a Peer* stays valid for the client's life.
  absl::flat_hash_map<std::string, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  int64_t batches_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batched_entries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_GRPC_PARTICIPANT_CLIENT_H_
