// The participant side of txcoord on SQLite: runs a service's SQL inside
// transaction branches, prepares them durably, and commits or aborts them on
// the coordinator's word. No gRPC here: `txagent` wraps this class in
// gRPC services, and a C++ service may embed it directly.
//
//   auto p = Participant::Open(options, &enlister);
//   (*p)->Execute("c1.1.7", {{"UPDATE accounts SET ...", {...}}}, ...);
//   (*p)->Prepare("c1.1.7");   // YES: durable, locks held
//   (*p)->Commit("c1.1.7");    // applies the changeset
#ifndef TXCOORD_PARTICIPANT_PARTICIPANT_H_
#define TXCOORD_PARTICIPANT_PARTICIPANT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/scheduler.h"
#include "common/sql_value.h"
#include "participant/outbox.h"
#include "participant/outbox_store.h"

namespace txcoord::participant {

enum class Vote { kYes, kNo, kReadOnly };
enum class Outcome { kCommitted, kAborted };

class ParticipantObserver;  // participant/participant_observer.h

// Why a branch was rolled back.
enum class RollbackReason {
  kAborted,          // the coordinator's Abort (phase 2, or the transaction gave up)
  kEnlistRefused,    // its enlistment was refused or went unanswered
  kReplaced,         // the coordinator holds an earlier, lost branch under another token
  kOnePhaseFailed,   // a one-phase commit whose changes no longer applied
  kHeuristic,        // an operator's heuristic abort of an in-doubt branch
  kIdle,             // unprepared and idle past the idle timeout
  kReleased,         // the client's Release
  kEpochLeftBehind,  // its coordinator serves a later epoch (protocol.md, step 7)
  kAskedAborted,     // idle, and its coordinator answered ABORTED when asked (its Abort was lost)
};
inline constexpr int kRollbackReasons = 9;
static_assert(static_cast<int>(RollbackReason::kAskedAborted) + 1 == kRollbackReasons);

// The reason as a metric label: "aborted", "enlist_refused", "replaced",
// "one_phase_failed", "heuristic", "idle", "released", "epoch", "asked".
const char* RollbackReasonLabel(RollbackReason reason);

// How the participant tells the coordinator about a branch. Implemented over
// gRPC by txagent, by fakes in tests. Called without any participant lock
// held; may block (it is an RPC with a deadline).
class Enlister {
 public:
  virtual ~Enlister() = default;
  // Adds this participant's branch to `txid`; with `prepared`, also reports
  // its YES vote. `branch_token` names this incarnation of the branch: the
  // coordinator aborts the transaction (ABORTED) when it already holds the
  // participant's branch under another token, because then an earlier
  // branch was lost with its writes. Idempotent for one token.
  // FAILED_PRECONDITION / NOT_FOUND / ABORTED mean the transaction will not
  // accept the branch; UNAVAILABLE or DEADLINE_EXCEEDED mean the outcome of
  // the call is unknown.
  virtual absl::Status Enlist(const std::string& txid, uint64_t branch_token, bool prepared) = 0;
  // Enlist without waiting, for an Execute the client names in its Commit:
  // an implementation that talks to a coordinator sends it with
  // EnlistRequest.named_in_commit, so that a Commit leaving the branch out
  // aborts. `done` gets what Enlist would return, on any thread, possibly
  // before this returns. The default runs Enlist here, unmarked (for
  // enlisters in tests; a coordinator would keep such a branch unnamed).
  // Call with no lock held that `done` takes.
  virtual void EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                           std::function<void(absl::Status)> done) {
    done(Enlist(txid, branch_token, prepared));
  }
  // What this agent may sign a YES vote for `txid` with instead of sending
  // it (docs/protocol.md, "Signed votes"): the key that the txid's
  // coordinator gave in an Enlist answer for a txid of the same cluster
  // and epoch, and the endpoint this agent enlists with. nullopt: no such
  // key yet (the vote goes by Enlist, whose answer may bring one).
  struct VoteSigning {
    std::string key;
    std::string endpoint;
  };
  virtual std::optional<VoteSigning> VoteSigningFor(const std::string& txid) {
    return std::nullopt;
  }
};

// When a YES vote of an Execute with prepare goes after the answer
// (ParticipantOptions::vote_deferral).
enum class VoteDeferral { kNever, kWhenContended, kAlways };

struct ParticipantOptions {
  std::string db_path;  // SQLite file, created if missing
  std::string name;     // participant name (unique per transaction)
  absl::Duration default_lock_timeout = absl::Seconds(5);
  absl::Duration max_lock_timeout = absl::Seconds(60);
  size_t max_rows_per_statement = 10000;  // RESOURCE_EXHAUSTED beyond
  size_t max_result_bytes = 16 << 20;     // RESOURCE_EXHAUSTED beyond
  // Longest one run of an Execute's statements may take; SQLite interrupts
  // it then (RESOURCE_EXHAUSTED). All SQL shares one connection, so a
  // runaway query would otherwise stall every branch, Prepare and Commit.
  // Zero: no limit.
  absl::Duration max_statement_time = absl::Seconds(10);
  // An unprepared branch with no call for this long is rolled back (its
  // locks freed; a later Prepare votes NO) by the maintenance that runs on
  // `scheduler`. Zero: never.
  absl::Duration branch_idle_timeout = absl::Seconds(60);
  // The time of everything the participant stamps and compares: a branch's
  // last use (the idle timeout), prepare times, stored one-phase outcomes
  // and their pruning, heuristic decisions, outbox rows. Waits that block
  // the calling thread are on real time instead (row-lock waits, vote
  // resends, SQLite's busy timeout, max_statement_time); the simulator sets
  // them to zero. Must outlive the participant.
  Clock* clock = RealClock();
  // Where the participant's maintenance runs: rolling back idle branches
  // (every branch_idle_timeout / 4, between 10ms and 10s) and pruning
  // one-phase outcomes past outcome_retention (every minute). Its Now()
  // must be on the same time as `clock`. Null: no maintenance in the
  // background (call ReapIdleBranches). Must outlive the participant.
  Scheduler* scheduler = nullptr;
  // Where deferred votes wait for their sync (vote_deferral), apart from
  // the maintenance so that a slow disk does not hold that up, nor it the
  // votes. Null: on `scheduler` (sharing its thread). Used only with a
  // `scheduler`. Must outlive the participant.
  Scheduler* vote_scheduler = nullptr;
  // Early prepare: how long an Execute(prepare) keeps resending a YES vote
  // whose Enlist went unanswered (UNAVAILABLE, DEADLINE_EXCEEDED, ...),
  // bounded also by the call's own deadline; the first resend waits
  // vote_retry_backoff, each later one twice as long (at most 500ms).
  // Still unanswered then: the Execute fails with ABORTED, the branch stays
  // prepared. Zero: no resend (the simulator, whose thread must not block).
  absl::Duration vote_retry_time = absl::Seconds(2);
  absl::Duration vote_retry_backoff = absl::Milliseconds(50);
  // Deferred votes (docs/protocol.md): when an Execute with prepare and
  // named_in_commit may answer before its prepare is durable, its YES vote
  // then going by Enlist once a sync covers it (waited for on
  // `vote_scheduler`).
  // kWhenContended defers while a sync is running and a caller it does not
  // cover (the deferred votes' own wait included) already sleeps waiting
  // for a later one (GroupCommit::Contended: the Execute would wait for the
  // rest of one sync and a whole one more); kAlways (tests,
  // the simulator) whenever it can. Only a branch the coordinator does not
  // know yet (no earlier Enlist): for one it knows, the coordinator would
  // ask with Prepare anyway. Needs a scheduler: without one, never.
  VoteDeferral vote_deferral = VoteDeferral::kWhenContended;
  // How long a phase-2 answer (Commit, or a Batch with no Prepare in it)
  // may wait, with nothing syncing, for a sync another call starts (the
  // next transaction's prepare, usually) before it syncs itself: at one
  // client that halves the agent's syncs, since a branch's commit and the
  // next branch's prepare then share one. The answer still leaves only
  // once its commit is durable; the coordinator's client does not wait for
  // it. A blocking wait on real time; zero (the default, and the
  // simulator's): sync at once.
  absl::Duration phase2_sync_delay = absl::ZeroDuration();
  // How long a statement waits for SQLite's write lock held by another
  // process before failing with UNAVAILABLE.
  absl::Duration busy_timeout = absl::Seconds(5);
  // How long one-phase outcomes are kept for retried CommitOnePhase calls.
  absl::Duration outcome_retention = absl::Hours(24);
  // First branch token (see Enlister); each new branch takes the next. 0:
  // a random one at Open, so that tokens differ across restarts. Tests and
  // the simulator set it to stay deterministic.
  uint64_t branch_token_seed = 0;
  // Called, with no participant lock held, each time an Execute (of `txid`;
  // empty for a local batch) blocks on a row lock that `holder` has. For
  // metrics and tests; keep it short, the waiting Execute runs it.
  std::function<void(const std::string& txid, const std::string& holder)> on_lock_wait;
  // Told about executes, votes, commits and aborts (for metrics); may be
  // null. Must outlive the participant.
  ParticipantObserver* observer = nullptr;
  // Transactional messages: what a service may add to a branch.
  OutboxLimits outbox;
  // Called each time a commit (or an operator's retry) made messages
  // pending in the outbox: the relay's wake-up. Runs under the
  // participant's lock: keep it to a signal, never call back in.
  std::function<void()> on_outbox_pending;
};

// The part of ParticipantOptions that may change while the participant runs
// (the config centre, docs/cluster.md); the options give the first values.
struct ParticipantPolicy {
  absl::Duration default_lock_timeout;  // > 0
  absl::Duration max_statement_time;    // >= 0; zero: no limit
  absl::Duration branch_idle_timeout;   // >= 0; zero: never
};

// A branch prepared durably and not yet decided (in-doubt until the
// coordinator's outcome is known).
struct PreparedBranch {
  std::string txid;
  std::string coordinator;  // cluster id that owns the txid
  absl::Time prepared_at;
  // The coordinator refused the branch's vote (early prepare), e.g. for a
  // txid it does not know after a restart. The branch stays prepared until
  // the coordinator's outcome says how it ends, and the in-doubt resolver
  // asks for that at once rather than leave its rows locked.
  bool vote_refused = false;
  // Its YES vote was signed for the client's Commit to carry and has not
  // been sent by Enlist (docs/protocol.md, "Signed votes"): the resolver
  // sends it (SendSignedVote) before it asks, so that a Commit slower than
  // its first look still finds the transaction waiting. Set again when
  // that Enlist, or a deferred vote's ("Deferred votes"), fails
  // UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED.
  bool vote_unsent = false;
  // That late Enlist is on its way and not answered yet, or a deferred
  // vote waits for the sync that makes the branch durable: the resolver
  // neither sends it again nor asks, since a question that overtook it
  // would, for a reserved txid not begun yet, use the txid up.
  bool vote_sending = false;
};

// An operator's forced outcome of an in-doubt branch (txctl resolve), kept
// durably and compared with the coordinator's outcome once that is known.
struct HeuristicDecision {
  std::string txid;
  std::string coordinator;  // cluster id that owns the txid
  Outcome decision = Outcome::kAborted;
  absl::Time decided_at;
  std::string reason;
  std::optional<Outcome> coordinator_outcome;  // once learned
  bool mixed = false;                          // the coordinator decided the other way
};

// One Prepare, Commit or Abort of a batch (Participant::RunBatch).
enum class BranchOp { kPrepare, kCommit, kAbort };
struct BatchEntry {
  BranchOp op = BranchOp::kPrepare;
  std::string txid;
  uint64_t branch_token = 0;  // kPrepare only, as in Prepare
};
// What the entry's own call would have returned: `status`, and for an OK
// kPrepare the vote.
struct BatchAnswer {
  absl::Status status;
  Vote vote = Vote::kNo;
};

// What Participant::Release did.
struct ReleaseResult {
  bool released = false;  // an unprepared branch was rolled back
  std::string detail;     // why not, or what was released
};

struct ExecuteResult {
  std::vector<SqlResult> results;
  // Set when Execute was asked to prepare: kYes, or kReadOnly if the branch
  // wrote nothing.
  Vote vote = Vote::kNo;
  // The ids of the call's messages, in order.
  std::vector<std::string> message_ids;
  // The branch's token once it has written (its enlistment is sent or
  // acknowledged); 0 while it has written nothing.
  uint64_t branch_token = 0;
  // A YES vote signed instead of sent (ExecuteOptions::carries_vote_proof),
  // and the endpoint it was signed with; empty otherwise.
  std::string vote_proof;
  std::string endpoint;
  // The YES vote waits for a sync and then goes by Enlist
  // (ParticipantOptions::vote_deferral): the answer came before the
  // branch's prepare was durable, and carries no proof.
  bool vote_deferred = false;
};

// How Execute runs a call (beyond its txid and statements).
struct ExecuteOptions {
  bool prepare = false;
  absl::Duration lock_timeout = absl::ZeroDuration();  // zero: the default
  absl::Time call_deadline = absl::InfiniteFuture();
  // The client names the branch in its Commit (docs/protocol.md): answer
  // once the enlistment (or the vote) is sent, not acknowledged. If the
  // coordinator refuses or never gets it, an unprepared branch is rolled
  // back and a prepared one waits for the coordinator's outcome (ABORTED).
  bool named_in_commit = false;
  // With named_in_commit and prepare: the client carries a signed vote to
  // its Commit, so with a key of the txid's coordinator the YES vote is
  // signed into the result (ExecuteResult::vote_proof) and no Enlist is
  // sent.
  bool carries_vote_proof = false;
  // Transactional messages added to the branch after the statements (or,
  // with no txid, committed with them): rows of the outbox once the branch
  // commits, never if it aborts.
  std::vector<OutboxMessage> messages;
};

// Thread-safe: every method may be called from any thread concurrently.
// Its maintenance runs as callbacks on options.scheduler, never after the
// destructor started (which waits for a running one).
class Participant final {
 public:
  // Opens (creating if needed) the database in WAL mode (synced by the
  // participant before it answers, see wal_sync.h) with foreign_keys=ON, creates the internal
  // tables, and restores the row locks of every prepared branch before returning. `enlister` must
  // outlive the participant.
  static absl::StatusOr<std::unique_ptr<Participant>> Open(const ParticipantOptions& options,
                                                           Enlister* enlister);
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  // Runs `statements` in order inside the branch of `txid` (docs/architecture.md,
  // "Branches on SQLite": re-apply the branch changeset, run, take the new changeset, roll back,
  // lock rows). An empty txid runs them as one local autocommit transaction
  // instead (DDL allowed there). The first write of a txid enlists the
  // branch before returning. `lock_timeout` zero means the default.
  // `call_deadline` is the caller's (e.g. its RPC's): SQL still running then
  // is interrupted, as it is past max_statement_time.
  // Errors: INVALID_ARGUMENT (empty, malformed SQL, a write to a table
  // without PRIMARY KEY, DDL inside a branch), PERMISSION_DENIED
  // (authorizer), ABORTED (lock timeout; enlist refused; with `prepare`, a
  // vote the coordinator refused or never answered: the branch then stays
  // prepared until the coordinator's outcome is known), FAILED_PRECONDITION
  // (branch already prepared), RESOURCE_EXHAUSTED (result too large; ran
  // past max_statement_time), DEADLINE_EXCEEDED (ran past `call_deadline`).
  // A failed statement leaves the branch as it was before the call.
  absl::StatusOr<ExecuteResult> Execute(const std::string& txid,
                                        const std::vector<SqlStatement>& statements, bool prepare,
                                        absl::Duration lock_timeout,
                                        absl::Time call_deadline = absl::InfiniteFuture());
  // The same, with messages (see ExecuteOptions). `statements` may be empty
  // when there are messages. Also INVALID_ARGUMENT for a message that
  // breaks a rule of outbox.h, or more messages in the branch than
  // options.outbox.max_messages; nothing of the call is kept then.
  absl::StatusOr<ExecuteResult> Execute(const std::string& txid,
                                        const std::vector<SqlStatement>& statements,
                                        ExecuteOptions options);

  // Phase 1. Stores the branch durably and votes kYes; kReadOnly (and
  // forgets the branch) if it wrote nothing; kNo if unknown. A prepared
  // branch votes kYes again. A nonzero `branch_token` other than the
  // branch's own (the coordinator enlisted an earlier, lost branch) votes
  // kNo and rolls the branch back.
  absl::StatusOr<Vote> Prepare(const std::string& txid, uint64_t branch_token = 0);

  // Phase 2. Applies a prepared branch's changeset and forgets it in one
  // SQLite transaction, then frees its locks. Unknown txid: OK (already
  // committed). An unprepared branch: FAILED_PRECONDITION. A txid an
  // operator heuristically aborted: FAILED_PRECONDITION "HEURISTIC_MIXED:
  // ..." (common/heuristic.h), recorded and logged at ERROR.
  absl::Status Commit(const std::string& txid);

  // Drops the branch (prepared or not) and frees its locks. Idempotent.
  // A txid an operator heuristically committed: HEURISTIC_MIXED as above.
  // `why` is what the observer counts (the coordinator's Abort by default).
  absl::Status Abort(const std::string& txid, RollbackReason why = RollbackReason::kAborted);

  // Rolls back the unprepared branch of `txid` at once (its changes and
  // row locks), as the idle timeout would later: for a client that ends a
  // transaction whose coordinator may not know this branch. An Execute
  // still running on it fails with ABORTED; a later Prepare votes NO, so a
  // transaction released before its commit aborts. A prepared branch is
  // never touched (only the coordinator decides it) and no branch is not
  // an error: both answer released=false with the reason. Idempotent.
  ReleaseResult Release(const std::string& txid);

  // Commits an unprepared branch in one step (the coordinator's one-phase
  // optimisation). The outcome is stored in the same SQLite transaction so
  // that a retried call answers the same. Unknown branch with no stored
  // outcome: kAborted. A nonzero `branch_token` other than the branch's own
  // aborts it, as in Prepare.
  absl::StatusOr<Outcome> CommitOnePhase(const std::string& txid, uint64_t branch_token = 0);

  // Runs the entries in order, as Prepare, Commit and Abort would, and
  // waits once for everything they made durable-bound (YES votes, commits)
  // instead of once per entry: a group of the coordinator's calls costs
  // one WAL sync. One answer per entry, in order.
  std::vector<BatchAnswer> RunBatch(const std::vector<BatchEntry>& entries);

  // Prepared (in-doubt) branches, oldest first.
  std::vector<PreparedBranch> ListPrepared();
  // Txids of the unprepared branches that no Execute is using, unused since
  // `idle_since` or longer, and whose coordinator took their Enlist: the
  // ones whose transaction may have aborted without its Abort reaching
  // this agent (the in-doubt resolver asks about them). In txid order.
  std::vector<std::string> ListIdleEnlisted(absl::Time idle_since);
  // Sends the YES vote of `txid`'s branch by Enlist after all, if it was
  // signed and not sent (PreparedBranch::vote_unsent) and the branch is
  // still prepared; the answer is handled as an early prepare's. Returns
  // whether it sent.
  bool SendSignedVote(const std::string& txid);

  // --- Heuristic decisions (participant_heuristics.cc) -------------------
  // An operator forces the outcome of the prepared branch of `txid`: the
  // decision is stored in the same SQLite transaction that applies (commit)
  // or drops (abort) the branch. Idempotent for the same decision.
  // NOT_FOUND: no prepared branch. FAILED_PRECONDITION: the branch is not
  // prepared (not in doubt), or was already decided the other way.
  absl::StatusOr<HeuristicDecision> ResolveHeuristically(const std::string& txid, Outcome decision,
                                                         const std::string& reason);
  // Oldest first. With `unsettled_only`, only those whose coordinator
  // outcome is not known yet (what the in-doubt resolver still asks about).
  absl::StatusOr<std::vector<HeuristicDecision>> ListHeuristics(bool unsettled_only = false);
  // Records the coordinator's outcome for a heuristically decided txid (the
  // in-doubt resolver learned it); a contradiction is logged at ERROR and
  // flagged `mixed`. NOT_FOUND if `txid` has no heuristic decision.
  absl::StatusOr<HeuristicDecision> RecordCoordinatorOutcome(const std::string& txid,
                                                             Outcome outcome);

  // --- The outbox (participant_outbox.cc, outbox_store.h) ---------------
  // Pending messages in commit order, payloads included: the relay's work.
  absl::StatusOr<std::vector<OutboxRow>> PendingOutbox(size_t limit);
  // The relay's results for rows PendingOutbox returned.
  absl::Status RecordOutboxAttempts(const std::vector<OutboxAttempt>& attempts);
  // With `count_delivered` false, `delivered` stays 0 (see outbox_store.h).
  absl::StatusOr<OutboxCounts> CountOutbox(bool count_delivered = true);
  // Oldest first, payloads left out; nullopt state: pending and dead.
  absl::StatusOr<std::vector<OutboxRow>> ListOutbox(std::optional<OutboxState> state, size_t limit);
  // NOT_FOUND if no message has `id`.
  absl::StatusOr<OutboxRow> GetOutboxMessage(const std::string& id);
  // Makes dead (or backing-off) messages pending and due now; `ids` empty:
  // every dead one. Returns how many.
  absl::StatusOr<int64_t> RetryOutbox(const std::vector<std::string>& ids);
  // Deletes delivered or dead messages (`ids` empty: all in `state`).
  absl::StatusOr<int64_t> PurgeOutbox(OutboxState state, const std::vector<std::string>& ids);
  // Deletes up to `limit` messages delivered before `cutoff`.
  absl::StatusOr<int64_t> DeleteDeliveredOutbox(absl::Time cutoff, size_t limit);

  // The policy in force.
  ParticipantPolicy policy();
  // Changes the policy at once, for calls that start after it returns: an
  // Execute already waiting for a lock or running SQL keeps the limits it
  // started with; the idle reaper uses the new timeout from its next round.
  // INVALID_ARGUMENT (nothing changed) for a value ParticipantPolicy rules
  // out.
  absl::Status SetPolicy(const ParticipantPolicy& policy);

  // Number of branches known in memory (prepared or active), for tests and
  // metrics.
  size_t BranchCount();
  // Syncs of the database's log so far (group commit), for tests and
  // metrics.
  uint64_t SyncCount();
  // Phase-2 answers that waited for a sync (phase2_sync_delay): those
  // another call's sync covered, and those that synced themselves.
  struct Phase2Syncs {
    uint64_t shared = 0;
    uint64_t own = 0;
  };
  Phase2Syncs Phase2SyncCounts();
  // For a clean stop, once no Execute runs: sends the deferred votes still
  // queued (ParticipantOptions::vote_deferral) on this thread, after the
  // sync that covers them, instead of leaving them to the scheduler the
  // destructor closes; first waits for a run of the scheduler's that took
  // votes already. Returns once every vote is handed to the Enlister;
  // their Enlists are answered in the background.
  void SendDeferredVotesNow();
  // The participant name it enlists under (ParticipantOptions::name).
  const std::string& name() const;

  // Number of lock keys held by all branches, for tests and metrics.
  size_t LockCount();

  // Rolls back every unprepared branch idle since before
  // `now - branch_idle_timeout`, and every one (not running an Execute) of
  // an epoch its coordinator has left behind, and returns how many. The
  // maintenance on options.scheduler calls it with the clock's time; tests
  // may call it with a time of their choosing.
  size_t ReapIdleBranches(absl::Time now);

 private:
  class Impl;
  explicit Participant(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_PARTICIPANT_H_
