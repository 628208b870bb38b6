// How the coordinator's participant calls travel, without any queueing:
// single Prepare, Commit, Abort and CommitOnePhase calls and Batch calls to
// one endpoint, each asynchronous. BatchingParticipantClient decides what
// goes alone and what goes together; the daemon runs it over gRPC
// (GrpcParticipantTransport), the simulator over its simulated network
// (sim::SimParticipantTransport), so both run the same batching.
#ifndef TXCOORD_COORDINATOR_PARTICIPANT_TRANSPORT_H_
#define TXCOORD_COORDINATOR_PARTICIPANT_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/actions.h"

namespace txcoord::coordinator {

// One Prepare, Commit or Abort, as an entry of a Batch call.
enum class BranchOp { kPrepare, kCommit, kAbort };
// "Prepare", "Commit" or "Abort", for logs and traces.
inline const char* BranchOpName(BranchOp op) {
  switch (op) {
    case BranchOp::kPrepare:
      return "Prepare";
    case BranchOp::kCommit:
      return "Commit";
    case BranchOp::kAbort:
      return "Abort";
  }
  return "?";
}
struct BatchEntry {
  BranchOp op = BranchOp::kPrepare;
  std::string txid;
  uint64_t branch_token = 0;  // kPrepare only
};

// What the entry's own call would have returned: `status`, and for an OK
// kPrepare the vote (kYes or kReadOnly; a NO vote is an ABORTED status
// naming the participant's reason, as ParticipantClient::Prepare gives it).
struct BatchAnswer {
  absl::Status status;
  Vote vote = Vote::kUnknown;
};

// Implementations are thread-safe, except those meant for one thread (the
// simulator's) that say so. Every call runs `done` exactly once (never,
// in the simulator, once the calling process has crashed): later on a
// thread of the implementation's choosing, or before returning when the
// call fails at once. The caller holds no lock across a call, so
// `done` may call back in. `timeout` is the call's deadline, from now.
class ParticipantTransport {
 public:
  virtual ~ParticipantTransport() = default;

  // A NO vote is ABORTED with the participant's reason.
  virtual void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                       absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) = 0;
  virtual void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
                      std::function<void(absl::Status)> done) = 0;
  virtual void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
                     std::function<void(absl::Status)> done) = 0;
  // `done` gets true if the participant committed, false if it aborted.
  virtual void CommitOnePhase(const std::string& endpoint, const std::string& txid,
                              uint64_t branch_token, absl::Duration timeout,
                              std::function<void(absl::StatusOr<bool>)> done) = 0;

  // Runs `entries` (1 to max_batch_entries()) at the participant in order,
  // each as its own call would run, for one WAL sync there. `done` gets one
  // answer per entry, in order, or an error for the whole call:
  // UNIMPLEMENTED when the participant does not know Batch (no entry ran),
  // anything else when the call failed (none, some or all entries may have
  // run; each is idempotent, so they may be sent again).
  virtual void Batch(const std::string& endpoint, std::vector<BatchEntry> entries,
                     absl::Duration timeout,
                     std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) = 0;
  // The most entries one Batch call may carry.
  virtual int max_batch_entries() const = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_PARTICIPANT_TRANSPORT_H_
