// ParticipantClient with adaptive batching, over any ParticipantTransport:
// while `max_in_flight` calls to one participant are outstanding, further
// Prepare, Commit and Abort calls to it wait in a queue, and the first call
// to end sends everything queued as one Batch call (one call, one WAL sync
// at the participant). An idle participant is sent single calls at once,
// so a lone transaction waits for nothing; a busy one gets fewer, larger
// calls. A participant that does not know Batch (UNIMPLEMENTED) is sent
// single calls for a while, then tried again.
//
// It reads time only from its Clock and starts no thread, so the simulator
// runs it on simulated time as the daemon runs it on real time:
//
//   GrpcParticipantTransport transport(credentials);
//   BatchingParticipantClient client(&transport, RealClock());
//   client.Prepare(branch, txid, absl::Seconds(5), [](absl::StatusOr<Vote> v) { ... });
#ifndef TXCOORD_COORDINATOR_BATCHING_PARTICIPANT_CLIENT_H_
#define TXCOORD_COORDINATOR_BATCHING_PARTICIPANT_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"
#include "coordinator/participant_client.h"
#include "coordinator/participant_transport.h"

namespace txcoord::coordinator {

struct BatchingOptions {
  // Prepare/Commit/Abort calls outstanding per participant before more
  // are queued for a batch. Two: the participant can run one call's SQL
  // while the other's WAL sync is under way.
  int max_in_flight = 2;
  // Most entries in one Batch call (never more than the transport's
  // max_batch_entries()).
  int max_batch = 256;
  // How long a participant that answered Batch with UNIMPLEMENTED is sent
  // single calls before Batch is tried again.
  absl::Duration singles_after_unimplemented = absl::Minutes(1);
};

// Thread-safe. No lock is held across a transport call or a callback, so
// callbacks may call back in.
class BatchingParticipantClient final : public ParticipantClient {
 public:
  // `transport` and `clock` must outlive the client, and the client must
  // outlive the completion of every call it made (the transport calls back
  // into it). Out-of-range options are brought into range (at least one
  // call in flight; 1 to max_batch_entries() entries per batch).
  BatchingParticipantClient(ParticipantTransport* transport, Clock* clock,
                            BatchingOptions options = {});
  BatchingParticipantClient(const BatchingParticipantClient&) = delete;
  BatchingParticipantClient& operator=(const BatchingParticipantClient&) = delete;

  void Prepare(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
               std::function<void(absl::StatusOr<Vote>)> done) override;
  void Commit(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override;
  void Abort(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override;
  // Sent at once, never queued: a Batch call has no one-phase entry.
  void CommitOnePhase(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override;

  // Batch calls sent so far (an UNIMPLEMENTED one included), and the
  // entries they carried: for metrics and tests.
  int64_t batches_sent();
  int64_t batched_entries();

 private:
  // One Prepare, Commit or Abort, sent alone or in a batch.
  struct Request {
    BatchEntry entry;
    absl::Time deadline;
    std::function<void(absl::StatusOr<Vote>)> voted;  // kPrepare
    std::function<void(absl::Status)> done;           // kCommit, kAbort; may be null
  };
  struct Peer {
    explicit Peer(std::string endpoint) : endpoint(std::move(endpoint)) {}
    const std::string endpoint;
    absl::Mutex mu;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    std::deque<Request> queue ABSL_GUARDED_BY(mu);
    // Until then the participant is sent single calls: it answered Batch
    // UNIMPLEMENTED (an older agent; it may be upgraded meanwhile).
    absl::Time singles_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  };

  Peer* PeerFor(const std::string& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  void Submit(const std::string& endpoint, Request request);
  // A call to `peer` ended: sends what waited (as single calls if
  // `singles_now` or the participant is in its single-call window), or
  // frees its slot.
  void CallEnded(Peer* peer, bool singles_now = false) ABSL_LOCKS_EXCLUDED(peer->mu);
  void SendSingle(Peer* peer, Request request);
  void SendBatch(Peer* peer, std::vector<Request> requests);
  void BatchEnded(Peer* peer, std::vector<Request> requests,
                  absl::StatusOr<std::vector<BatchAnswer>> answers) ABSL_LOCKS_EXCLUDED(peer->mu);
  // Runs the request's callback: `status`, or for an OK Prepare `vote`.
  static void Finish(Request& request, const absl::Status& status, Vote vote = Vote::kUnknown);

  ParticipantTransport* const transport_;
  Clock* const clock_;
  const BatchingOptions options_;
  absl::Mutex mu_;
  // Peers are never removed: a Peer* stays valid for the client's life.
  absl::flat_hash_map<std::string, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  int64_t batches_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batched_entries_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_BATCHING_PARTICIPANT_CLIENT_H_
