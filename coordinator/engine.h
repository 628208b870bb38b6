// The coordinator's protocol engine: presumed-abort two-phase commit as a
// state machine with no I/O. Requests and events go in; actions (send a
// message, append a log record, answer a waiting client, arm a timer) come
// out. The daemon runs it under real adapters (gRPC, the WAL, the clock);
// tests and the simulator run it under fakes.
//
//   Engine engine(options);
//   Actions out;
//   auto txid = engine.Begin(absl::Seconds(30), now, &out);
//   engine.Enlist(*txid, {"orders", "10.0.0.5:7171"}, false, now, &out);
//   engine.Commit(*txid, now, &out);     // out: SendPrepare x N, ArmTimer
//   engine.OnPrepareResult(...);         // ... out: LogCommit
//   engine.OnCommitLogged(...);          // out: Decided, SendCommit x N
#ifndef TXCOORD_COORDINATOR_ENGINE_H_
#define TXCOORD_COORDINATOR_ENGINE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/actions.h"
#include "coordinator/records.h"
#include "coordinator/recovery_state.h"
#include "coordinator/retained_outcomes.h"

namespace txcoord::coordinator {

// The reason Commit and GetTransaction give for a forgotten txid that did
// not commit.
extern const char kPresumedAbort[];

struct EngineOptions {
  std::string cluster_id;  // names this coordinator in every txid
  uint64_t epoch = 1;      // grows on every start (see data_dir.h)
  absl::Duration default_tx_timeout = absl::Seconds(30);
  absl::Duration max_tx_timeout = absl::Hours(1);
  absl::Duration prepare_timeout = absl::Seconds(5);
  absl::Duration phase2_backoff_initial = absl::Milliseconds(50);
  absl::Duration phase2_backoff_max = absl::Seconds(5);
  size_t max_branches = 64;
  size_t max_open_transactions = 1000000;
  size_t finished_cache = 10000;  // details kept after a transaction ends
  // Txid reservations (Reserve): how long one lives, and how many reserved
  // txids not yet used may be outstanding in all (a bit each).
  absl::Duration reservation_ttl = absl::Seconds(60);
  size_t max_reserved_txids = 1 << 20;
  // Which committed txids are kept, and how long, after they end: what
  // Commit, Abort and GetTransaction answer for a forgotten txid.
  RetentionOptions retention;
  uint64_t random_seed = 0;  // jitter; fixed in tests and simulation
};

// The part of EngineOptions that may change while the engine runs (the
// config centre, docs/cluster.md); the options give the first values.
struct EnginePolicy {
  absl::Duration default_tx_timeout;  // above zero, at most max_tx_timeout
  absl::Duration prepare_timeout;     // above zero
  absl::Duration phase2_backoff_max;  // at least phase2_backoff_initial
};

// What an operator or client sees of one transaction.
struct BranchView {
  BranchRef ref;
  Vote vote = Vote::kUnknown;
  bool acknowledged = false;
  uint32_t phase2_attempts = 0;  // failed phase-2 calls
  std::string last_error;
  absl::Time last_attempt = absl::InfinitePast();  // last phase-2 call sent
  bool heuristic = false;                          // acknowledged by an operator (MarkBranchDone)
  bool heuristic_mixed = false;                    // answered HEURISTIC_MIXED: retries stopped
  bool awaited = false;  // named in the Commit, not enlisted yet (no endpoint)
};

struct TransactionView {
  std::string txid;
  TxState state = TxState::kActive;
  std::vector<BranchView> branches;
  absl::Time begin = absl::InfinitePast();  // InfinitePast if recovered
  absl::Time deadline = absl::InfiniteFuture();
  std::string reason;
  absl::Time decided = absl::InfinitePast();  // COMMIT durable, or recovered
};

// Which transactions an operator lists (Engine::List).
struct ListFilter {
  std::vector<TxState> states;  // empty: every state
  // Age counts from Begin, or from recovery for recovered transactions.
  absl::Duration min_age = absl::ZeroDuration();
  std::string participant;  // empty: any
  size_t page_size = 100;
  std::string page_token;  // a next_page_token; empty: the first page
  bool include_finished = false;
};

struct ListPage {
  std::vector<TransactionView> transactions;  // oldest txid first
  std::string next_page_token;                // empty on the last page
};

// What the engine has done since it started, and what is open now, for
// metrics. Each event is counted once, where the engine decides it: a
// repeated Commit call that hears an earlier decision again counts nothing.
struct EngineStats {
  uint64_t committed = 0;  // COMMIT durable, all branches read-only, or one-phase committed
  uint64_t aborted = 0;    // decided ABORT, for any reason
  uint64_t votes_yes = 0;  // Prepare answers and early-prepare votes
  uint64_t votes_no = 0;
  uint64_t votes_read_only = 0;
  uint64_t votes_failed = 0;    // Prepare calls that got no vote (unreachable, timeout)
  uint64_t phase2_retries = 0;  // failed phase-2 calls scheduled again
  // Retained outcomes (retained_outcomes.h): committed txids kept after
  // they ended, the bitmap memory holding them, and chunks dropped.
  uint64_t retained_committed = 0;
  size_t retained_bytes = 0;
  uint64_t retained_chunks_dropped = 0;
  // Txid reservations: txids reserved, reserved txids begun by their first
  // Enlist or Commit, and those never begun (expired unused, used up by an
  // Abort or QueryOutcome first, or dropped at shutdown).
  uint64_t txids_reserved = 0;
  uint64_t reserved_begun = 0;
  uint64_t reserved_unused = 0;
  size_t reserved_outstanding = 0;  // reserved, not yet used, reservation live
  // Sequences never to be issued: QueryOutcome was asked about a txid of
  // this epoch before it was issued (Engine::NeverIssue).
  uint64_t txids_skipped = 0;
  size_t open = 0;  // transactions not finished
  // Since Begin (or recovery) of the oldest open transaction; zero if none.
  absl::Duration oldest_open_age;
  // Branches of open transactions that answered HEURISTIC_MIXED (an
  // operator forced the other outcome at the agent).
  size_t heuristic_mixed_branches = 0;
};

struct BeginResult {
  std::string txid;
  absl::Time deadline;
};

// Txids "<cluster>.<epoch>.<s>" for s in [first_sequence, first_sequence
// + count), usable until `valid_for` after the reservation.
struct ReserveResult {
  std::string cluster;
  uint64_t epoch = 0;
  uint64_t first_sequence = 0;
  uint32_t count = 0;
  absl::Duration valid_for;
};

// Most txids one reservation may hold.
inline constexpr uint32_t kMaxReservedTxids = 1024;

// Not thread-safe: the owner serialises every call (the runtime holds one
// mutex around it). Every method appends the actions it decides to `out`.
class Engine final {
 public:
  explicit Engine(const EngineOptions& options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- Client requests --------------------------------------------------
  // `timeout` zero means the default. RESOURCE_EXHAUSTED past
  // max_open_transactions; INVALID_ARGUMENT past max_tx_timeout.
  absl::StatusOr<BeginResult> Begin(absl::Duration timeout, absl::Time now, Actions* out);
  // Reserves `count` txids (1 to kMaxReservedTxids) for a client to hand
  // out without Begin. Nothing exists for them yet: each begins at its
  // first Enlist or Commit while the reservation lives (reservation_ttl),
  // with `timeout` (zero: the default then) counted from that moment. An
  // Abort or QueryOutcome that comes first uses it up instead: it can then
  // never begin (presumed abort). A txid first used after the reservation
  // expired is unknown, as one never begun. Used txids are remembered
  // while their reservation lives, so none begins twice (nor after: its
  // sequence is never issued again). INVALID_ARGUMENT for a count or
  // timeout out of bounds; RESOURCE_EXHAUSTED past max_reserved_txids.
  absl::StatusOr<ReserveResult> Reserve(uint32_t count, absl::Duration timeout, absl::Time now);
  // Forgets every reservation: their unused txids can no longer begin
  // (shutdown: the coordinator takes no new transactions).
  void DropReservations();

  // The check Commit makes of the branches it is given (INVALID_ARGUMENT:
  // more than `max_branches`, a bad name, a zero token, a participant
  // named twice), for a caller that must know before it changes anything.
  static absl::Status CheckNamed(const std::vector<BranchRef>& named, size_t max_branches);
  size_t max_branches() const { return options_.max_branches; }
  // The policy in force.
  EnginePolicy policy() const;
  // Changes it for what comes next: a Begin without a timeout gets the new
  // default, a Commit that sends Prepare the new prepare timeout, a phase-2
  // retry armed from now on the new cap. Deadlines and timers already armed
  // keep theirs. INVALID_ARGUMENT (nothing changed) outside EnginePolicy's
  // bounds.
  absl::Status SetPolicy(const EnginePolicy& policy);
  // Adds (or re-confirms) a branch; `prepared` records a YES vote.
  // `named_in_commit`: sent for an Execute the client will name in its
  // Commit (EnlistRequest.named_in_commit); a Commit that names branches
  // but not this one then aborts. Without it, such a Commit keeps the
  // branch as if it were named.
  absl::Status Enlist(const std::string& txid, const BranchRef& branch, bool prepared,
                      absl::Time now, Actions* out, bool named_in_commit = false);
  // Starts commit. OK means a Decided action for `txid` is (or will be)
  // emitted; the caller registers its waiter before calling.
  absl::Status Commit(const std::string& txid, absl::Time now, Actions* out) {
    return Commit(txid, {}, now, out);
  }
  // Commit of the branches the client names (participant and token; see
  // CommitRequest.branches), checked against the enlisted ones: one
  // enlisted for a named Execute but not named, or named under another
  // token, aborts; one enlisted without that flag (an agent that predates
  // named branches) is kept as if named; one not yet enlisted joins as
  // awaited, and its Enlist (accepted while
  // PREPARING for a named branch) brings its endpoint and vote, or the
  // prepare timeout aborts. Empty: every enlisted branch, unchecked.
  // INVALID_ARGUMENT for a bad name, a zero token, a participant named
  // twice or too many.
  absl::Status Commit(const std::string& txid, const std::vector<BranchRef>& named, absl::Time now,
                      Actions* out);
  // Aborts an undecided transaction; FAILED_PRECONDITION once COMMIT is
  // being logged or was logged.
  absl::Status Abort(const std::string& txid, const std::string& reason, absl::Time now,
                     Actions* out);

  // --- Participant requests ---------------------------------------------
  // The outcome for `participant`'s branch. A txid owned by another
  // coordinator: FAILED_PRECONDITION (never presumed aborted).
  absl::StatusOr<Outcome> QueryOutcome(const std::string& txid, const std::string& participant);

  // --- Results of earlier actions -----------------------------------------
  void OnPrepareResult(const std::string& txid, const std::string& participant,
                       const absl::StatusOr<Vote>& vote, absl::Time now, Actions* out);
  void OnCommitLogged(const std::string& txid, const absl::Status& status, absl::Time now,
                      Actions* out);
  void OnPhase2Result(const std::string& txid, const std::string& participant,
                      const absl::Status& status, absl::Time now, Actions* out);
  // The ONE_PHASE record of a one-phase commit is durable (OK: the branch
  // is asked now) or the log failed (the outcome stays unknown until a
  // restart asks the branch).
  void OnOnePhaseLogged(const std::string& txid, const absl::Status& status, absl::Time now,
                        Actions* out);
  // `committed` is the participant's decision.
  void OnOnePhaseResult(const std::string& txid, const std::string& participant,
                        const absl::StatusOr<bool>& committed, absl::Time now, Actions* out);
  void OnTimer(const TimerId& timer, absl::Time now, Actions* out);

  // --- Operator requests (engine_admin.cc) --------------------------------
  // INVALID_ARGUMENT for a malformed page token.
  absl::StatusOr<ListPage> List(const ListFilter& filter, absl::Time now) const;
  // Resends phase 2 now to every unacknowledged branch, backoff reset, and
  // replaces their pending retry timers. Returns how many were resent.
  // FAILED_PRECONDITION unless COMMITTING or in one-phase commit.
  absl::StatusOr<size_t> RetryPhase2(const std::string& txid, absl::Time now, Actions* out);
  // Aborts an undecided transaction like Abort, but NOT_FOUND for an
  // unknown txid (an operator's typo should not look like success).
  absl::Status ForceAbort(const std::string& txid, const std::string& reason, absl::Time now,
                          Actions* out);
  // An operator settled `participant`'s branch of a COMMITTING transaction
  // by hand. OK with a LogMarkDone in `out`: the mark takes effect in
  // OnMarkDoneLogged, once durable, so that a restart never forgets it; the
  // caller answers the operator then. OK and no action: the branch is
  // already acknowledged (or the transaction committed with it). Nothing
  // changes until then; concurrent calls each emit their own LogMarkDone
  // (replaying MARK_DONE twice is harmless).
  absl::Status MarkBranchDone(const std::string& txid, const std::string& participant,
                              const std::string& note, absl::Time now, Actions* out);
  // The MARK_DONE record of `mark` is durable (OK) or the log failed (the
  // branch stays unmarked). On OK the branch counts as acknowledged
  // (heuristic); the last one ends the transaction (LogEnd). A transaction
  // that ended meanwhile, or a branch that acknowledged meanwhile, is left
  // as it is.
  void OnMarkDoneLogged(const LogMarkDone& mark, const absl::Status& status, absl::Time now,
                        Actions* out);

  // --- Recovery and checkpoints -------------------------------------------
  // Re-drives a transaction whose COMMIT record was found without END.
  // Called before any request is served.
  void RecoverCommitted(const std::string& txid, const std::vector<BranchRef>& branches,
                        absl::Time now, Actions* out);
  // As above, with the MARK_DONE records logged after that COMMIT: their
  // branches count as acknowledged (heuristic) and get no phase 2; if that
  // settles every branch, the transaction ends (LogEnd). Marks of
  // participants without a branch are ignored.
  void RecoverCommitted(const std::string& txid, const std::vector<BranchRef>& branches,
                        const std::vector<LogMarkDone>& marks, absl::Time now, Actions* out);
  // Everything the log held (see RecoveryState): the retained outcomes
  // (with every epoch before this one expired if the log predates them),
  // then each COMMIT without END re-driven, each ONE_PHASE without END
  // asked again. Call once, before serving, in a new engine.
  void Recover(const RecoveryState& state, absl::Time now, Actions* out);
  // Re-asks the only branch of a one-phase commit whose ONE_PHASE record
  // was found without END: it decides (or has decided) the outcome.
  void RecoverOnePhase(const LogOnePhase& one_phase, absl::Time now, Actions* out);
  // Transactions whose COMMIT was logged (or is being logged) and that have
  // not ended: what a checkpoint must carry into a new log segment.
  std::vector<LogCommit> LiveCommits() const;
  // One-phase commits whose ONE_PHASE was logged (or is being logged) and
  // that have not ended: a checkpoint carries them too.
  std::vector<LogOnePhase> LiveOnePhase() const;
  const RetainedOutcomes& retained() const { return retained_; }
  // Everything a WAL checkpoint must carry so that every older segment can
  // go: the live COMMITs, then the marks on them (replay applies a mark
  // only to a COMMIT it has read), the live ONE_PHASEs, the EXPIRED mark
  // and every RETAINED chunk. COMMITs and ONE_PHASEs in txid order.
  std::vector<EncodedRecord> Checkpoint() const;
  // The operators' durable marks on those transactions' branches: what a
  // checkpoint must carry too, after the COMMITs they refer to.
  std::vector<LogMarkDone> LiveMarks() const;

  // --- Inspection -----------------------------------------------------------
  // A reserved txid not used yet whose reservation lives at `now` is
  // ACTIVE (undecided: it may still begin) with no branches.
  absl::StatusOr<TransactionView> Describe(const std::string& txid,
                                           absl::Time now = absl::InfinitePast()) const;
  size_t open_transactions() const { return txns_.size(); }
  // Counters and open transactions (engine_stats.cc). Scans the open
  // transactions for the oldest: O(open).
  EngineStats Stats(absl::Time now) const;

 private:
  struct Branch {
    BranchRef ref;
    Vote vote = Vote::kUnknown;
    bool acknowledged = false;
    uint32_t attempts = 0;
    std::string last_error;
    uint32_t backoff_level = 0;     // failures since the last operator retry
    uint64_t retry_generation = 0;  // of the one retry timer that counts
    absl::Time last_attempt = absl::InfinitePast();
    bool heuristic = false;
    bool heuristic_mixed = false;
    std::string mark_note;      // the operator's note, if heuristic
    bool prepare_sent = false;  // a SendPrepare went out: only then may a vote come back
    // Named by the client's Commit, not enlisted yet: no endpoint to call.
    bool awaited = false;
    // An Enlist said the client names it in Commit (so must, or abort).
    bool named_in_commit = false;
    // The client's Commit named it: its Enlist is taken while PREPARING.
    bool named = false;
  };
  // Invariants, checked where they are relied on (common/check.h): an open
  // transaction is ACTIVE, PREPARING or COMMITTING (Finish removes it as it
  // ends); `logging` only in PREPARING; `one_phase` only in PREPARING,
  // with exactly one branch; once COMMITTING, never aborted.
  struct Txn {
    TxState state = TxState::kActive;
    std::vector<Branch> branches;
    absl::Time begin = absl::InfinitePast();
    absl::Time deadline = absl::InfiniteFuture();
    std::string reason;
    absl::Time decided = absl::InfinitePast();
    bool logging = false;    // COMMIT (or ONE_PHASE) append issued, not yet durable
    bool one_phase = false;  // decision delegated to the only branch
  };

  // Ownership and syntax check; NOT_FOUND-free.
  absl::Status CheckOwned(const std::string& txid) const;
  // NOT_FOUND for an operator's request about a txid this engine no longer
  // (or never) held.
  static absl::Status UnknownToOperators(const std::string& txid);
  absl::StatusOr<Txn*> Find(const std::string& txid);
  // Find, beginning a reserved txid at its first use (Reserve).
  absl::StatusOr<Txn*> FindOrBegin(const std::string& txid, absl::Time now, Actions* out);
  // Begins `txid` if it is reserved, unused and its reservation lives:
  // the new transaction, nullptr if it is none of these, or
  // RESOURCE_EXHAUSTED (left unused) past max_open_transactions.
  absl::StatusOr<Txn*> BeginReserved(const std::string& txid, absl::Time now, Actions* out);
  // Where a reserved txid not used yet sits: its reservation's first
  // sequence and its index there.
  struct ReservedSlot {
    uint64_t first;
    uint64_t index;
  };
  std::optional<ReservedSlot> UnusedSlot(const std::string& txid) const;
  // Marks the slot used (its reservation goes once every slot is); the
  // timeout the reservation gives.
  absl::Duration Use(const ReservedSlot& slot);
  // Uses up `txid` if it is reserved and not used yet, so that it never
  // begins; true if it did.
  bool UseUpReserved(const std::string& txid);
  // True if `txid` is reserved, not used yet, and its reservation lives
  // at `now` (so it may still begin).
  bool ReservedUnused(const std::string& txid, absl::Time now) const;
  void DropExpiredReservations(absl::Time now);
  Txn& StartTxn(const std::string& txid, absl::Duration timeout, absl::Time now, Actions* out);
  // The outcome of an owned txid this engine no longer holds (nor caches):
  // true if it committed, false if not (presumed abort); OUT_OF_RANGE once
  // past the retention window, NOT_FOUND if this epoch never issued it.
  absl::StatusOr<bool> ForgottenOutcome(const std::string& txid) const;
  // A txid of this epoch that QueryOutcome is asked about before it was
  // issued (a client made it up, and an agent prepared a branch of it,
  // maybe signing its vote) is presumed aborted, so it must never be
  // issued: the sequence moves past it. Not for one kMaxSignedSequencesAhead
  // or more beyond the next txid: no agent signs for it, and one question
  // moves the sequence by less than that.
  void NeverIssue(const std::string& txid);
  // Keeps `txid`'s commit among the retained outcomes.
  void Retain(const std::string& txid, absl::Time now);
  Branch* FindBranch(Txn& txn, const std::string& participant);
  void StartPrepare(const std::string& txid, Txn& txn, absl::Time now, Actions* out);
  // Commit's check of the named branches against the enlisted ones; the
  // reason to abort, or "" (awaited branches added).
  std::string MatchNamed(Txn& txn, const std::vector<BranchRef>& named);
  // An Enlist of `branch` while PREPARING, into `b`, a branch the Commit
  // named (its token must match).
  absl::Status EnlistNamed(const std::string& txid, Txn& txn, Branch& b, const BranchRef& branch,
                           bool prepared, absl::Time now, Actions* out);
  void MaybeDecide(const std::string& txid, Txn& txn, absl::Time now, Actions* out);
  void DoAbort(const std::string& txid, Txn& txn, const std::string& reason, Actions* out);
  void StartPhase2(const std::string& txid, Txn& txn, absl::Time now, Actions* out);
  void SendPhase2(const std::string& txid, Txn& txn, Branch& branch, absl::Time now, Actions* out);
  void ArmRetry(const std::string& txid, Txn& txn, Branch& branch, absl::Time now, Actions* out);
  // Ends a COMMITTING transaction (LogEnd) once every YES branch is
  // acknowledged; true if it did. `txn` is gone then.
  bool MaybeEnd(const std::string& txid, const Txn& txn, absl::Time now, Actions* out);
  // Drops retained outcomes past the window, never past a txid still open
  // or not yet issued (RetainedOutcomes::Prune).
  void PruneRetained(absl::Time now);
  TransactionView FinishedView(const std::string& txid) const;
  void Finish(const std::string& txid, TxState final_state, const std::string& reason);
  absl::Duration Backoff(uint32_t attempts);
  TransactionView View(const std::string& txid, const Txn& txn) const;

  // engine_stats.cc
  void CountVote(const absl::StatusOr<Vote>& vote);

  EngineOptions options_;
  EngineStats stats_;  // the counters; open and oldest are computed by Stats()
  uint64_t next_sequence_ = 1;
  std::mt19937_64 rng_;
  absl::flat_hash_map<std::string, Txn> txns_;
  RetainedOutcomes retained_;
  absl::Time next_window_check_ = absl::InfinitePast();  // see PruneRetained
  // Recently finished transactions, for Describe and QueryOutcome after the
  // transaction was forgotten. Bounded by options_.finished_cache.
  struct Finished {
    TxState state;
    std::string reason;
    std::vector<std::string> committed_participants;
    std::vector<std::string> heuristic_participants;  // of those, marked done by hand
    absl::Time begin = absl::InfinitePast();
    absl::Time decided = absl::InfinitePast();
  };
  absl::flat_hash_map<std::string, Finished> finished_;
  std::deque<std::string> finished_order_;
  struct Reservation {
    absl::Time expires;
    absl::Duration timeout;  // zero: the default when a txid begins
    std::vector<bool> used;
    uint32_t unused = 0;
  };
  // By first sequence; a reservation goes once expired (dropped lazily)
  // or once every txid in it is used.
  absl::btree_map<uint64_t, Reservation> reservations_;
  // Their unused txids, expired ones not yet dropped included: what
  // max_reserved_txids bounds.
  size_t reserved_unused_ = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_ENGINE_H_
