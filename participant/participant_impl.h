// The state behind Participant: one SQLite connection, the branches known in
// memory and their row locks. Private to the participant library; split from
// participant.cc so that the Execute path (participant_execute.cc) and the
// branch lifecycle (participant.cc) each stay one concept.
#ifndef TXCOORD_PARTICIPANT_PARTICIPANT_IMPL_H_
#define TXCOORD_PARTICIPANT_PARTICIPANT_IMPL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduled_scope.h"
#include "common/sqlite_db.h"
#include "common/txid.h"
#include "participant/authorizer.h"
#include "participant/changeset.h"
#include "participant/group_commit.h"
#include "participant/internal_tables.h"
#include "participant/lock_table.h"
#include "participant/participant.h"
#include "participant/participant_observer.h"
#include "participant/schema.h"
#include "participant/statement_runner.h"

namespace txcoord::participant {

class Participant::Impl final {
 public:
  Impl(const ParticipantOptions& options, Enlister* enlister, SqliteDb db);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Connection settings, internal tables, prepared branches and their locks,
  // then the first maintenance on options.scheduler.
  absl::Status Init();

  absl::StatusOr<ExecuteResult> Execute(const std::string& txid,
                                        const std::vector<SqlStatement>& statements,
                                        ExecuteOptions call);
  absl::StatusOr<Vote> Prepare(const std::string& txid, uint64_t branch_token);
  absl::Status Commit(const std::string& txid);
  absl::Status Abort(const std::string& txid, RollbackReason why);
  absl::StatusOr<Outcome> CommitOnePhase(const std::string& txid, uint64_t branch_token);
  std::vector<PreparedBranch> ListPrepared();
  std::vector<std::string> ListIdleEnlisted(absl::Time idle_since) ABSL_LOCKS_EXCLUDED(mu_);
  bool SendSignedVote(const std::string& txid) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<HeuristicDecision> ResolveHeuristically(const std::string& txid, Outcome decision,
                                                         const std::string& reason);
  absl::StatusOr<std::vector<HeuristicDecision>> ListHeuristics(bool unsettled_only);
  absl::StatusOr<HeuristicDecision> RecordCoordinatorOutcome(const std::string& txid,
                                                             Outcome outcome);
  size_t BranchCount();
  const std::string& name() const { return options_.name; }
  ParticipantPolicy policy() const ABSL_LOCKS_EXCLUDED(policy_mu_) {
    absl::MutexLock lock(&policy_mu_);
    return policy_;
  }
  absl::Status SetPolicy(const ParticipantPolicy& policy) ABSL_LOCKS_EXCLUDED(policy_mu_);
  size_t LockCount() { return locks_.KeyCount(); }
  // Rolls back every unprepared branch that no Execute is using and that
  // is idle since before `now - branch_idle_timeout`, or whose epoch its
  // coordinator has left behind (NoteServingEpoch); returns how many.
  size_t ReapIdleBranches(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_, epochs_mu_);
  ReleaseResult Release(const std::string& txid);
  ParticipantObserver* observer() const { return options_.observer; }
  // The participant's clock (ParticipantOptions::clock).
  absl::Time Now() const { return options_.clock->Now(); }
  // Returns once every commit made so far is durable (see GroupCommit). Call
  // with no lock held, before answering anything that promises a commit.
  absl::Status MakeDurable() { return wal_sync_.WaitDurable(); }
  // The same for phase-2 answers, which may wait options_.phase2_sync_delay
  // for another caller's sync (GroupCommit::WaitDurable(delay)).
  absl::Status MakePhase2Durable() { return wal_sync_.WaitDurable(options_.phase2_sync_delay); }
  // The same for an answer that committed nothing of its own, or a commit
  // a read must not see undurable: what a read may not see undurable.
  absl::Status MakeReadable() { return wal_sync_.WaitReadable(); }
  // Its counters (syncs, delayed waits), for tests and metrics.
  const GroupCommit& group_commit() const { return wal_sync_; }
  // On vote_scope_ (or a clean stop's thread): waits until every queued
  // branch's prepare is durable, then sends their votes by Enlist
  // (kLateVote).
  void SendDeferredVotes() ABSL_LOCKS_EXCLUDED(mu_, vote_run_mu_);
  // Runs `fn` on the connection under its lock (the outbox's short
  // internal statements), returning what it returns.
  template <typename Fn>
  auto WithConnection(Fn fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return fn(db());
  }
  void NotifyOutbox(size_t added) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    NotifyOutboxLocked(added);
  }

 private:
  struct Branch {
    std::string txid;
    std::string coordinator;  // the txid's cluster
    uint64_t epoch = 0;       // the txid's epoch (0 for a branch restored prepared)
    std::string changeset;    // everything the branch wrote so far
    uint64_t token = 0;       // this incarnation's name (Enlister); kept when prepared
    bool prepared = false;
    bool enlisted = false;
    // An Enlist of it was answered OK: its coordinator holds the
    // transaction (begun, a reserved txid included), so asking its outcome
    // cannot end a transaction that is still to begin.
    bool enlist_taken = false;
    bool busy = false;     // an Execute is running on it: others wait
    bool dropped = false;  // ended while an Execute ran: that Execute fails
    absl::Time last_used;
    absl::Time prepared_at;
    std::vector<OutboxMessage> messages;  // published once the branch commits
    absl::Status enlist_failure;          // why an asynchronous Enlist rolled it back
    // Prepared, and the coordinator refused its vote: it holds no such
    // transaction (or no longer takes branches), so its outcome is worth
    // asking at once (PreparedBranch::vote_refused).
    bool vote_refused = false;
    // Its YES vote was signed into the Execute's answer and not sent by
    // Enlist (PreparedBranch::vote_unsent); set again when the resolver's
    // late send (SendSignedVote) did not get through.
    bool vote_unsent = false;
    // That late send is unanswered (PreparedBranch::vote_sending).
    bool vote_sending = false;

    // A branch that wrote nothing votes READ_ONLY and is forgotten.
    bool HasWrites() const { return !changeset.empty() || !messages.empty(); }
  };
  using BranchPtr = std::shared_ptr<Branch>;

  // What one run of a branch's batch produced.
  struct Attempt {
    std::vector<SqlResult> results;
    std::string changeset;
    std::vector<LockKey> keys;
    // Kept for a prepare: the write transaction the batch ran in, open, with
    // the batch's changes rolled back. The changeset was recorded from this
    // very state under this lock hold, so the prepare stores the branch in
    // it, with no trial apply where AppliesAsRecorded. Rolled back when the
    // attempt is dropped.
    std::unique_ptr<WriteTransaction> open;
  };

  // participant_execute.cc
  // `deadline` ends lock waits; `call_deadline` interrupts the SQL.
  absl::StatusOr<ExecuteResult> ExecuteLocal(const std::vector<SqlStatement>& statements,
                                             const std::vector<OutboxMessage>& messages,
                                             absl::Duration timeout, absl::Time deadline,
                                             absl::Time call_deadline);
  // INVALID_ARGUMENT unless every message passes CheckOutboxMessage and
  // there are at most options_.outbox.max_messages.
  absl::Status CheckMessages(const std::vector<OutboxMessage>& messages) const;
  // Adds the outbox rows of a committing branch, inside the caller's
  // transaction.
  absl::Status InsertBranchMessagesLocked(const Branch& branch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyOutboxLocked(size_t added) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The branch of `txid` (parsed: `id`) for this Execute alone, created if
  // new; ABORTED, rolling it back, for an unprepared branch of an epoch its
  // coordinator has left behind.
  absl::StatusOr<BranchPtr> ClaimBranch(const std::string& txid, const Txid& id,
                                        absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseBranch(const BranchPtr& branch) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Attempt> RunBranchAttempt(const Branch& branch,
                                           const std::vector<SqlStatement>& statements,
                                           absl::Time call_deadline, bool keep_open)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ExecuteResult> ReportToCoordinator(const BranchPtr& branch,
                                                    std::vector<SqlResult> results, bool with_vote,
                                                    absl::Time call_deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // ReportToCoordinator for a branch the client names in its Commit: the
  // enlistment is sent, and the answer handled by OnEnlistAnswered.
  // With `signed_vote` (ExecuteOptions::carries_vote_proof) and a key of
  // the txid's coordinator, a YES vote is signed into the result instead.
  absl::StatusOr<ExecuteResult> SendToCoordinator(const BranchPtr& branch,
                                                  std::vector<SqlResult> results, bool with_vote,
                                                  bool signed_vote) ABSL_LOCKS_EXCLUDED(mu_);
  // What an enlistment sent in the background carries.
  enum class BackgroundEnlist {
    kBranch,  // the branch alone (its first write)
    kVote,    // the branch with its YES vote (early prepare)
    // A YES vote sent after the Execute answered: a signed one sent after
    // all (SendSignedVote), or a deferred one once a sync covered its
    // prepare (SendDeferredVotes). The flags of a vote on its way apply.
    kLateVote,
  };
  void OnEnlistAnswered(const BranchPtr& branch, BackgroundEnlist what, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sends the branch's enlistment marked named_in_commit, without waiting;
  // OnEnlistAnswered takes the answer, unless the participant has closed
  // by then.
  void EnlistInBackground(const BranchPtr& branch, BackgroundEnlist what) ABSL_LOCKS_EXCLUDED(mu_);
  // The coordinator took an Enlist of `branch`, so it serves the branch's
  // epoch, and every transaction of its earlier epochs without a decision
  // is aborted (presumed abort). Records that epoch for the coordinator;
  // when it is above the one recorded before, rolls back the unprepared
  // branches of the earlier epochs: they can never commit, and their row
  // locks would otherwise stay until the idle timeout.
  void NoteServingEpoch(const Branch& branch) ABSL_LOCKS_EXCLUDED(mu_, epochs_mu_);
  // Why an unprepared `branch` is rolled back once its coordinator serves
  // the later epoch `serving`.
  static std::string EpochLeftBehind(const Branch& branch, uint64_t serving);
  // The epoch an Enlist showed `coordinator` to serve; 0 if none yet.
  uint64_t ServingEpoch(const std::string& coordinator) const ABSL_LOCKS_EXCLUDED(epochs_mu_);
  // Before a prepared branch's YES vote leaves: every commit so far durable
  // (the failpoint "after-prepare-durable" follows).
  absl::Status DurableBeforeVote(const Branch& branch) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues the YES vote of `branch`, just prepared, for SendDeferredVotes
  // (scheduling it unless it is already due) and returns true, when
  // ParticipantOptions::vote_deferral says so; else false.
  bool MaybeDeferVote(const BranchPtr& branch) ABSL_LOCKS_EXCLUDED(mu_);
  // Resends the YES vote of a prepared `branch` whose Enlist ended with the
  // unanswered `status`, with backoff, until one is answered or the retry
  // time (options_.vote_retry_time, and `call_deadline`) runs out. Returns
  // the last Enlist's status.
  absl::Status ResendVote(const Branch& branch, absl::Status status, absl::Time call_deadline)
      ABSL_LOCKS_EXCLUDED(mu_);

  // participant.cc
  absl::Status RestorePreparedBranches() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Begins `tx` and brings schema_ up to date inside it, where the
  // transaction's lock serves the schema check too.
  absl::Status BeginWithSchemaLocked(WriteTransaction& tx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores the branch durably after checking that its changeset applies:
  // in `open` if given (Attempt::open, where the changeset was recorded; the
  // check is skipped where AppliesAsRecorded), else in a transaction of its
  // own.
  absl::Status PrepareLocked(Branch& branch, std::unique_ptr<WriteTransaction> open = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a prepared branch and deletes its row in one transaction, which
  // also stores the outcome with `record_outcome` (one-phase commit) and
  // the operator's decision with `heuristic` (may be null).
  absl::Status CommitPreparedLocked(const BranchPtr& branch, bool record_outcome,
                                    const StoredHeuristic* heuristic = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes the prepared row if any, then forgets the branch.
  absl::Status AbortLocked(const BranchPtr& branch, RollbackReason reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the branch and frees its locks.
  void DropLocked(const BranchPtr& branch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rolls back an unprepared branch (nothing of it is durable: dropping it
  // is the rollback), logging `why` and counting an abort.
  void RollBackUnpreparedLocked(const BranchPtr& branch, RollbackReason reason,
                                absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rolls back, in txid order, every unprepared branch no Execute is using
  // that is idle since before `now - idle_timeout` (zero: none is), or
  // whose epoch is below the one `serving` gives for its coordinator;
  // returns how many. ReapIdleBranches and NoteServingEpoch.
  size_t RollBackStaleLocked(absl::Time now, absl::Duration idle_timeout,
                             const absl::flat_hash_map<std::string, uint64_t>& serving)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BranchPtr FindLocked(const std::string& txid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // participant_heuristics.cc
  // Phase 2 reached a txid with no branch: OK unless an operator decided
  // it the other way (then HEURISTIC_MIXED); records the coordinator's
  // `outcome` next to a heuristic decision either way.
  absl::Status CheckHeuristicLocked(const std::string& txid, Outcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<HeuristicDecision> RecordOutcomeLocked(const StoredHeuristic& stored,
                                                        Outcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reaps idle branches, prunes old one-phase outcomes when due, and
  // schedules the next round. Runs on the maintenance scope.
  void Maintain();
  // The branch of this participant that the coordinator asks about under
  // `token` is not `branch` (an earlier one was lost): true after rolling
  // `branch` back.
  bool RollBackIfNotTheEnlistedBranchLocked(const BranchPtr& branch, uint64_t token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  sqlite3* db() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return db_.get(); }

  // The limits of one run of statements, with the max_statement_time in force.
  ResultLimits Limits() const;

  const ParticipantOptions options_;
  const ResultLimits limits_;  // its max_run_time is policy_'s max_statement_time
  // Guards only policy_; taken on its own or inside mu_, never around
  // another lock.
  mutable absl::Mutex policy_mu_;
  ParticipantPolicy policy_ ABSL_GUARDED_BY(policy_mu_);
  Enlister* const enlister_;
  LockTable locks_;

  // Guards the connection and everything derived from it. Never held while
  // calling the Enlister or waiting for row locks.
  absl::Mutex mu_;
  absl::CondVar branch_released_;  // a busy branch became free
  GroupCommit wal_sync_;  // declared before db_: the WAL hook points at it until db_ closes
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
  Schema schema_ ABSL_GUARDED_BY(mu_);
  // Declared after db_: their statements are finalized before db_ closes.
  ChangesetApplier applier_ ABSL_GUARDED_BY(mu_);
  // txcoord's own statements (transaction control, its tables, the lock
  // keys' row reads), kept compiled; never the service's SQL, which the
  // authorizer judges at every compile.
  StatementCache statements_ ABSL_GUARDED_BY(mu_);
  // The service's statements, kept compiled with the authorizer's findings
  // (statement_runner.h); emptied when the schema's version moves.
  KeptStatements kept_statements_ ABSL_GUARDED_BY(mu_);
  Authorizer authorizer_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, BranchPtr> branches_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_);
  // Local transactions' message ids: "local/<name>/<prefix>-<n>/<index>",
  // the prefix random per Open so that ids never repeat across restarts.
  std::string local_id_prefix_;
  uint64_t next_local_ ABSL_GUARDED_BY(mu_) = 0;

  // Where SendDeferredVotes runs (ParticipantOptions::vote_scheduler);
  // null without a scheduler. Closed by the destructor with maintenance_.
  std::unique_ptr<ScheduledScope> vote_scope_;
  // Prepared branches whose votes wait for SendDeferredVotes; a run is
  // scheduled whenever it is not empty.
  std::vector<BranchPtr> deferred_votes_ ABSL_GUARDED_BY(mu_);
  // Held through a whole SendDeferredVotes, so that a run on this thread
  // (SendDeferredVotesNow) ends only after one that took the votes first
  // on the scheduler's has handed them to the enlister.
  absl::Mutex vote_run_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  // Only Maintain, which runs one round at a time, uses this.
  absl::Time last_prune_;
  // Null without a scheduler. Closed first by the destructor (after
  // vote_scope_), so that no round runs on a half-destroyed participant.
  std::unique_ptr<ScheduledScope> maintenance_;
  // What an asynchronous Enlist's answer reaches: null once the destructor
  // started, which waits for an answer being handled.
  struct Liveness {
    absl::Mutex mu;
    Impl* impl ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Liveness> liveness_;

  // The epoch each coordinator (txid cluster) served at its latest OK
  // Enlist; one entry per coordinator that took one. Taken inside mu_ or
  // liveness_->mu, never around another lock.
  mutable absl::Mutex epochs_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<std::string, uint64_t> serving_epochs_ ABSL_GUARDED_BY(epochs_mu_);
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_PARTICIPANT_IMPL_H_
