// What the participant core reports as it works, for the agent's metrics
// (agent/agent_metrics.h) and for tests: no gRPC, no metrics library.
#ifndef TXCOORD_PARTICIPANT_PARTICIPANT_OBSERVER_H_
#define TXCOORD_PARTICIPANT_PARTICIPANT_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "participant/participant.h"

namespace txcoord::participant {

// Called from the participant's threads, some with its connection lock
// held: implementations must be quick, thread-safe, and must not call the
// participant.
class ParticipantObserver {
 public:
  virtual ~ParticipantObserver() = default;

  // An Execute call returned after `latency` (lock waits included).
  virtual void OnExecute(absl::Duration latency, const absl::Status& status) = 0;
  // An Execute gave up waiting for a row lock (it fails with ABORTED).
  virtual void OnLockTimeout() = 0;
  // A prepare request was answered: Prepare, or Execute with prepare.
  virtual void OnPrepare(Vote vote) = 0;
  // A branch's changes were applied (phase 2, one-phase commit, or an
  // operator's heuristic commit).
  virtual void OnCommit() = 0;
  // A branch was rolled back, for `reason`. (A NO vote drops the branch
  // too; that is counted by OnPrepare.)
  virtual void OnAbort(RollbackReason reason) = 0;
  // A YES vote was signed into an Execute's answer instead of sent by
  // Enlist (docs/protocol.md, "Signed votes").
  virtual void OnVoteSigned() {}
  // A YES vote was deferred: the Execute answered before a sync, and the
  // vote goes by Enlist after one (ParticipantOptions::vote_deferral).
  virtual void OnVoteDeferred() {}
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_PARTICIPANT_OBSERVER_H_
