// The vocabulary between the coordinator's protocol engine and its adapters:
// protocol enums, branch references, and the actions the engine emits.
#ifndef TXCOORD_COORDINATOR_ACTIONS_H_
#define TXCOORD_COORDINATOR_ACTIONS_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace txcoord::coordinator {

enum class TxState { kActive, kPreparing, kCommitting, kCommitted, kAborted };
enum class Vote { kUnknown, kYes, kNo, kReadOnly };
enum class Outcome { kCommitted, kAborted, kPending };

const char* TxStateName(TxState state);
const char* VoteName(Vote vote);

// Where one branch of a transaction lives.
struct BranchRef {
  std::string participant;  // unique within a transaction
  std::string endpoint;     // "host:port" of its agent
  // The agent's name for this incarnation of the branch (0: not given).
  // Not logged: it guards phase 1 only (see Engine::Enlist).
  uint64_t token = 0;
  bool operator==(const BranchRef& other) const {
    return participant == other.participant && endpoint == other.endpoint;
  }
};

enum class TimerKind {
  kDeadline,        // the transaction's deadline
  kPrepareTimeout,  // votes not all in
  kRetryPhase2,     // resend Commit to one branch
  kRetryOnePhase,   // resend CommitOnePhase
};

struct TimerId {
  std::string txid;
  TimerKind kind = TimerKind::kDeadline;
  std::string participant;  // for the retry timers
  // Retry timers: only the branch's latest one counts, so that an
  // operator's "retry now" replaces the pending retry instead of starting
  // a second chain of them.
  uint64_t generation = 0;
};

// --- Actions ---------------------------------------------------------------

struct SendPrepare {
  std::string txid;
  BranchRef branch;
  absl::Duration timeout;  // the call's deadline: the prepare timeout in force
};
struct SendCommit {
  std::string txid;
  BranchRef branch;
};
struct SendAbort {
  std::string txid;
  BranchRef branch;
};
struct SendCommitOnePhase {
  std::string txid;
  BranchRef branch;
};
// Append a COMMIT record and make it durable; report with OnCommitLogged.
struct LogCommit {
  std::string txid;
  std::vector<BranchRef> branches;  // the branches that voted YES
};
// Append an END record; never forced (losing it only repeats phase 2, or
// asks a one-phase branch again, which answers the same).
struct LogEnd {
  std::string txid;
  // Also records that the transaction committed, for one that has no
  // COMMIT record (one-phase, or every branch read-only).
  bool committed = false;
};
// Append a ONE_PHASE record (the only branch is about to be asked to
// decide) and make it durable; report with OnOnePhaseLogged. Forced: a
// restart must know to ask that branch, since its answer may be COMMITTED.
struct LogOnePhase {
  std::string txid;
  BranchRef branch;  // with its token
};
// Append a MARK_DONE record (an operator settled `participant`'s branch of a
// COMMITTING transaction by hand) and make it durable; report with
// OnMarkDoneLogged. Forced: the operator hears OK only once a restart
// would find the mark.
struct LogMarkDone {
  std::string txid;
  std::string participant;
  std::string note;  // what the operator did; may be empty
};
// The outcome of `txid` is decided (or cannot be known): answer every
// client waiting in Commit. `error` non-OK means the outcome is unknown to
// the client (the log failed).
struct Decided {
  std::string txid;
  bool committed = false;
  std::string reason;
  absl::Status error;
};
struct ArmTimer {
  TimerId timer;
  absl::Time at;
};

using Action = std::variant<SendPrepare, SendCommit, SendAbort, SendCommitOnePhase, LogCommit,
                            LogEnd, LogOnePhase, LogMarkDone, Decided, ArmTimer>;
using Actions = std::vector<Action>;

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_ACTIONS_H_
