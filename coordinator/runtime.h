// Runs the protocol engine for real: serialises requests and events through
// one mutex, and carries out the engine's actions with the decision log,
// the participant client and the scheduler. The gRPC service calls it; it
// knows nothing of gRPC, threads or clocks of its own, so the simulator runs
// this same class on simulated time (sim/coordinator_node.h).
#ifndef TXCOORD_COORDINATOR_RUNTIME_H_
#define TXCOORD_COORDINATOR_RUNTIME_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"
#include "coordinator/engine.h"
#include "coordinator/participant_client.h"
#include "coordinator/recovery_state.h"
#include "coordinator/wal/decision_log.h"
#include "coordinator/wal/log.h"

namespace txcoord::coordinator {

struct RuntimeOptions {
  EngineOptions engine;
  absl::Duration phase2_rpc_timeout = absl::Seconds(5);
  absl::Duration abort_rpc_timeout = absl::Seconds(2);
  // Called as each Commit call returns (on its thread, no lock held) with
  // how long it took, its error (OK if decided) and whether it committed:
  // for the commit-latency metric. Keep it quick. May be empty.
  std::function<void(absl::Duration latency, const absl::Status& status, bool committed)>
      on_commit_returned;
  // Called with every decision the engine announces (Decided without
  // error), in the order they are taken, under the runtime's lock: it must
  // be quick and must not call the runtime. For the simulator's checker.
  // May be empty.
  std::function<void(const std::string& txid, bool committed)> on_decided;
  // This process's secret for signed votes (NewVoteSecret; never logged):
  // participants' keys derive from it (VoteKey), and a Commit's vote
  // proofs are checked against them. Empty: no keys are given out, and a
  // Commit that carries a proof is refused (docs/protocol.md, "Signed
  // votes").
  std::string vote_secret;
};

// A branch the client's Commit names (CommitRequest.branches). With a vote
// proof, `ref.endpoint` is the endpoint the agent signed with.
struct NamedBranch {
  BranchRef ref;
  std::string vote_proof;  // empty: the vote comes by Enlist
};

struct CommitResult {
  bool committed = false;
  std::string reason;
};

// What an operator's action did (RetryPhase2, ForceAbort, MarkBranchDone).
struct AdminResult {
  TransactionView transaction;  // after the action
  std::string message;          // in words, for txctl
};

// Thread-safe. `log`, `participants` and `scheduler` must outlive it. It
// never blocks a thread of the log, the participant client or the scheduler
// (only the blocking forms below wait, on their caller's thread), and every
// time it reads comes from `scheduler`.
class Runtime final {
 public:
  Runtime(const RuntimeOptions& options, wal::DecisionLog* log, ParticipantClient* participants,
          Scheduler* scheduler);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Takes the retained outcomes, re-drives every unfinished committed
  // transaction and re-asks every unfinished one-phase branch. If the log
  // had no EXPIRED record, appends one (forced), so that the next start
  // reads the same; until it is durable Begin and Commit answer UNAVAILABLE
  // "coordinator is still starting". `ready` runs once, when the runtime
  // accepts requests (OK: inline if there was no mark to log) or with the
  // error that failed the log. Call once, before serving requests.
  void RecoverAsync(const RecoveryState& state, std::function<void(absl::Status)> ready);
  // RecoverAsync, blocking until ready (the daemon's start).
  absl::Status Recover(const RecoveryState& state);

  absl::StatusOr<BeginResult> Begin(absl::Duration timeout);
  // See Engine::Reserve; refused as Begin is.
  absl::StatusOr<ReserveResult> Reserve(uint32_t count, absl::Duration timeout);
  // See Engine::Enlist.
  absl::Status Enlist(const std::string& txid, const BranchRef& branch, bool prepared,
                      bool named_in_commit = false);
  // Calls `done` once, when the outcome is decided (and, for COMMITTED,
  // durable) or `deadline` passes (DEADLINE_EXCEEDED: the commit goes on),
  // or at once with an error. `done` runs on whichever thread decided (a
  // gRPC callback, the WAL writer, the timer thread) with no lock held:
  // keep it short. No thread waits meanwhile.
  using CommitCallback = std::function<void(absl::StatusOr<CommitResult>)>;
  void CommitAsync(const std::string& txid, absl::Time deadline, CommitCallback done) {
    CommitAsync(txid, {}, deadline, std::move(done));
  }
  // With the branches the client names (Engine::Commit). Each branch that
  // carries a vote proof is checked first (INVALID_ARGUMENT, and nothing
  // changes, if one does not verify under the participant's key) and then
  // enlisted with its YES vote, as its agent's Enlist would have, before the
  // Commit; proofs for a txid of another epoch are ignored (such a txid is
  // not this process's to commit).
  void CommitAsync(const std::string& txid, std::vector<NamedBranch> named, absl::Time deadline,
                   CommitCallback done);
  // CommitAsync, blocking.
  absl::StatusOr<CommitResult> Commit(const std::string& txid, absl::Time deadline);
  // With the branches the client names: those with a vote proof that
  // verifies join first, so that the Abort reaches them too.
  absl::Status Abort(const std::string& txid, const std::vector<NamedBranch>& named = {});
  // This run's epoch: every txid it issues or reserves carries it.
  uint64_t epoch() const { return options_.engine.epoch; }
  // The key `participant` signs its votes with (for txids of this epoch),
  // handed out in OK Enlist answers; empty without a vote secret.
  std::string VoteKey(const std::string& participant) const;
  absl::StatusOr<Outcome> QueryOutcome(const std::string& txid, const std::string& participant);
  absl::StatusOr<TransactionView> Describe(const std::string& txid);

  // Operator requests (the CoordinatorAdmin service); see Engine. Each
  // logs what it did, with the txid.
  absl::StatusOr<ListPage> List(const ListFilter& filter);
  absl::StatusOr<AdminResult> RetryPhase2(const std::string& txid);
  absl::StatusOr<AdminResult> ForceAbort(const std::string& txid, const std::string& reason);
  // Answers OK only once the branch's MARK_DONE record is durable; if the
  // log failed, UNAVAILABLE and the branch is not marked. `done` runs once,
  // as CommitAsync's does: from the log's callback, or at once with an
  // error or when there is nothing to mark.
  using AdminCallback = std::function<void(absl::StatusOr<AdminResult>)>;
  void MarkBranchDoneAsync(const std::string& txid, const std::string& participant,
                           const std::string& note, AdminCallback done);
  // MarkBranchDoneAsync, blocking for one log sync: call it from a thread
  // that may wait, never from a log callback.
  absl::StatusOr<AdminResult> MarkBranchDone(const std::string& txid,
                                             const std::string& participant,
                                             const std::string& note);

  // The records a WAL checkpoint must carry forward (wal::LogOptions::checkpoint).
  std::vector<wal::Record> CheckpointRecords();

  // The engine's policy in force, and a change of it (Engine::SetPolicy)
  // while the runtime serves: the config centre applies its settings here.
  EnginePolicy policy();
  absl::Status SetPolicy(const EnginePolicy& policy);

  // Refuses new transactions and commits from now on (shutdown); reserved
  // txids not yet used can no longer begin.
  void StopAccepting();
  // Also stops carrying out actions: no more sends, appends or timers. After
  // it, the log, the timer queue and then the runtime may be destroyed in
  // that order even while callbacks are in flight. The engine state is kept
  // (a restart recovers from the log anyway).
  void Halt();
  size_t open_transactions();
  // The engine's counters and open transactions now (for metrics).
  EngineStats stats();

 private:
  struct Waiter {
    std::atomic<bool> fired{false};
    CommitCallback done;
    // The deadline's timer, once scheduled (0 before): cancelled by the
    // decision, so that answered Commits hold no timer for their deadline.
    std::atomic<Scheduler::TimerId> timer{0};
  };
  // Answers `waiter`; the first call wins: the decision or the deadline.
  void Fire(Waiter& waiter, absl::StatusOr<CommitResult> result);
  using Firing = std::vector<std::pair<std::shared_ptr<Waiter>, absl::StatusOr<CommitResult>>>;

  // Runs `fn` on the engine under the lock, answers waiters for every
  // Decided action, then carries out the other actions without the lock.
  template <typename Fn>
  auto WithEngine(Fn fn);
  // Takes the waiters of every Decided action, to be fired after unlocking.
  void TakeDecided(const Actions& actions, Firing* firing) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWaiter(const std::string& txid, const std::shared_ptr<Waiter>& waiter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Execute(Actions actions) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs as a MARK_DONE append completes: applies it, then answers every
  // MarkBranchDone waiting on that branch.
  void MarkDoneLogged(const LogMarkDone& mark, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // What MarkBranchDone answers once its MARK_DONE was logged (`logged`) or
  // was not needed.
  absl::StatusOr<AdminResult> MarkDoneResult(const std::string& txid,
                                             const std::string& participant,
                                             const std::string& note, bool logging,
                                             const absl::Status& logged) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckAccepting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // INVALID_ARGUMENT naming the first branch whose vote proof does not
  // verify; OK when all do (or none is given).
  absl::Status CheckVoteProofs(const std::string& txid,
                               const std::vector<NamedBranch>& named) const;
  // Whether proofs for `txid` count here: a txid of this cluster and epoch.
  bool ProofsCount(const std::string& txid) const;
  // Enlists every branch of `named` whose proof verifies (all that carry
  // one, if `checked` by CheckVoteProofs), with its YES vote, as its
  // agent's Enlist would have; refusals are left to the call that follows
  // to answer.
  void EnlistSigned(Engine& e, const std::string& txid, const std::vector<NamedBranch>& named,
                    bool checked, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Now() { return scheduler_->Now(); }

  const RuntimeOptions options_;
  wal::DecisionLog* const log_;
  ParticipantClient* const participants_;
  Scheduler* const scheduler_;

  absl::Mutex mu_;
  // VoteKey's keys, derived once per participant (at most
  // kMaxCachedVoteKeys: names come from requests).
  static constexpr size_t kMaxCachedVoteKeys = 4096;
  mutable absl::Mutex vote_keys_mu_ ABSL_ACQUIRED_AFTER(mu_);
  mutable absl::flat_hash_map<std::string, std::string> vote_keys_ ABSL_GUARDED_BY(vote_keys_mu_);
  Engine engine_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<Waiter>>> waiters_
      ABSL_GUARDED_BY(mu_);
  // MarkBranchDone calls waiting for their MARK_DONE to be durable, by
  // (txid, participant); each is called with the append's status.
  using MarkWaiter = std::function<void(const absl::Status& logged)>;
  absl::flat_hash_map<std::pair<std::string, std::string>, std::vector<MarkWaiter>> mark_waiters_
      ABSL_GUARDED_BY(mu_);
  // False until the EXPIRED mark Recover logs is durable.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool halted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_RUNTIME_H_
