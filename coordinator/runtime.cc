#include "coordinator/runtime.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/failpoint.h"
#include "common/heuristic.h"
#include "common/logging.h"
#include "common/txid.h"
#include "common/vote_proof.h"
#include "coordinator/records.h"

namespace txcoord::coordinator {

Runtime::Runtime(const RuntimeOptions& options, wal::DecisionLog* log,
                 ParticipantClient* participants, Scheduler* scheduler)
    : options_(options),
      log_(log),
      participants_(participants),
      scheduler_(scheduler),
      engine_(options.engine) {}

template <typename Fn>
auto Runtime::WithEngine(Fn fn) {
  Actions actions;
  Firing firing;
  mu_.Lock();
  auto result = fn(engine_, &actions);
  TakeDecided(actions, &firing);
  const bool halted = halted_;
  mu_.Unlock();
  for (auto& [waiter, outcome] : firing) Fire(*waiter, std::move(outcome));
  if (!halted) Execute(std::move(actions));
  return result;
}

void Runtime::Fire(Waiter& waiter, absl::StatusOr<CommitResult> result) {
  if (waiter.fired.exchange(true)) return;
  // CommitAsync cancels it instead if it stores the id after this load.
  if (const Scheduler::TimerId id = waiter.timer.load(); id != 0) scheduler_->Cancel(id);
  waiter.done(std::move(result));
}

void Runtime::RemoveWaiter(const std::string& txid, const std::shared_ptr<Waiter>& waiter) {
  auto it = waiters_.find(txid);
  if (it == waiters_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), waiter), list.end());
  if (list.empty()) waiters_.erase(it);
}

void Runtime::TakeDecided(const Actions& actions, Firing* firing) {
  for (const Action& action : actions) {
    const Decided* decided = std::get_if<Decided>(&action);
    if (decided == nullptr) continue;
    if (decided->error.ok()) {
      TXLOG(INFO) << "txid=" << decided->txid << (decided->committed ? " COMMITTED" : " ABORTED")
                  << (decided->reason.empty() ? "" : ": ") << decided->reason;
      if (options_.on_decided) options_.on_decided(decided->txid, decided->committed);
    } else {
      TXLOG(ERROR) << "txid=" << decided->txid << " " << decided->error;
    }
    auto it = waiters_.find(decided->txid);
    if (it == waiters_.end()) continue;
    for (auto& waiter : it->second) {
      if (decided->error.ok()) {
        firing->emplace_back(waiter, CommitResult{decided->committed, decided->reason});
      } else {
        firing->emplace_back(waiter, decided->error);
      }
    }
    waiters_.erase(it);
  }
}

void Runtime::Execute(Actions actions) {
  for (Action& action : actions) {
    if (auto* a = std::get_if<SendPrepare>(&action)) {
      participants_->Prepare(
          a->branch, a->txid, a->timeout,
          [this, txid = a->txid, p = a->branch.participant](absl::StatusOr<Vote> vote) {
            if (!vote.ok()) {
              TXLOG(WARNING) << "txid=" << txid << " prepare at " << p
                             << " failed: " << vote.status();
            }
            WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              e.OnPrepareResult(txid, p, vote, Now(), out);
              return 0;
            });
          });
    } else if (auto* a = std::get_if<SendCommit>(&action)) {
      participants_->Commit(
          a->branch, a->txid, options_.phase2_rpc_timeout,
          [this, txid = a->txid, p = a->branch.participant](absl::Status status) {
            if (IsHeuristicMixed(status)) {
              TXLOG(ERROR) << "txid=" << txid << " " << kHeuristicMixed << " at " << p
                           << ": an operator forced this branch the other way; the transaction "
                              "is COMMITTED elsewhere. Retries stop: repair the branch by hand, "
                              "then `txctl mark-done "
                           << txid << " " << p << "`. Agent said: " << status.message();
            } else if (!status.ok()) {
              TXLOG(WARNING) << "txid=" << txid << " commit at " << p
                             << " failed (will retry): " << status;
            }
            if (status.ok()) TXCOORD_FAILPOINT("mid-phase-two");
            WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              e.OnPhase2Result(txid, p, status, Now(), out);
              return 0;
            });
          });
    } else if (auto* a = std::get_if<SendAbort>(&action)) {
      // Best effort: a prepared branch that misses it asks QueryOutcome and
      // hears ABORTED; an unprepared one is rolled back when idle.
      participants_->Abort(
          a->branch, a->txid, options_.abort_rpc_timeout,
          [txid = a->txid, p = a->branch.participant](absl::Status status) {
            if (IsHeuristicMixed(status)) {
              TXLOG(ERROR) << "txid=" << txid << " " << kHeuristicMixed << " at " << p
                           << ": the transaction ABORTED but an operator committed this branch: "
                           << status.message();
            } else if (!status.ok()) {
              TXLOG(INFO) << "txid=" << txid << " abort at " << p << " not delivered: " << status;
            }
          });
    } else if (auto* a = std::get_if<SendCommitOnePhase>(&action)) {
      participants_->CommitOnePhase(
          a->branch, a->txid, options_.phase2_rpc_timeout,
          [this, txid = a->txid, p = a->branch.participant](absl::StatusOr<bool> committed) {
            if (!committed.ok()) {
              TXLOG(WARNING) << "txid=" << txid << " one-phase commit at " << p
                             << " failed (will retry): " << committed.status();
            }
            WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              e.OnOnePhaseResult(txid, p, committed, Now(), out);
              return 0;
            });
          });
    } else if (auto* a = std::get_if<LogCommit>(&action)) {
      TXCOORD_FAILPOINT("before-commit-logged");
      log_->Append(kRecordCommit, EncodeCommit(*a), /*sync=*/true,
                   [this, txid = a->txid](absl::Status status) {
                     if (status.ok()) TXCOORD_FAILPOINT("after-commit-logged");
                     WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                       e.OnCommitLogged(txid, status, Now(), out);
                       return 0;
                     });
                   });
    } else if (auto* a = std::get_if<LogOnePhase>(&action)) {
      TXCOORD_FAILPOINT("before-one-phase-logged");
      log_->Append(kRecordOnePhase, EncodeOnePhase(*a), /*sync=*/true,
                   [this, txid = a->txid](absl::Status status) {
                     if (status.ok()) TXCOORD_FAILPOINT("after-one-phase-logged");
                     WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                       e.OnOnePhaseLogged(txid, status, Now(), out);
                       return 0;
                     });
                   });
    } else if (auto* a = std::get_if<LogEnd>(&action)) {
      log_->Append(kRecordEnd, EncodeEnd(*a), /*sync=*/false, nullptr);
    } else if (auto* a = std::get_if<LogMarkDone>(&action)) {
      log_->Append(kRecordMarkDone, EncodeMarkDone(*a), /*sync=*/true,
                   [this, mark = *a](absl::Status status) { MarkDoneLogged(mark, status); });
    } else if (auto* a = std::get_if<ArmTimer>(&action)) {
      scheduler_->Schedule(a->at, [this, timer = std::move(a->timer)] {
        WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          e.OnTimer(timer, Now(), out);
          return 0;
        });
      });
    }
    // Decided was handled under the lock.
  }
}

void Runtime::MarkDoneLogged(const LogMarkDone& mark, const absl::Status& status) {
  std::vector<MarkWaiter> waiting;
  WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    e.OnMarkDoneLogged(mark, status, Now(), out);
    auto it = mark_waiters_.find(std::make_pair(mark.txid, mark.participant));
    if (it != mark_waiters_.end()) {
      waiting = std::move(it->second);
      mark_waiters_.erase(it);
    }
    return 0;
  });
  for (const MarkWaiter& waiter : waiting) waiter(status);
}

absl::Status Runtime::CheckAccepting() {
  if (!accepting_) return absl::UnavailableError("coordinator is shutting down");
  if (!started_) return absl::UnavailableError("coordinator is still starting");
  if (absl::Status health = log_->health(); !health.ok()) {
    return absl::UnavailableError(
        absl::StrCat("coordinator refuses new work: its log failed: ", health.message()));
  }
  return absl::OkStatus();
}

void Runtime::RecoverAsync(const RecoveryState& state, std::function<void(absl::Status)> ready) {
  for (const auto& [txid, commit] : state.unfinished()) {
    const std::vector<LogMarkDone>& marks = state.marks(txid);
    TXLOG(INFO) << "txid=" << txid << " recovered as COMMITTING with " << commit.branches.size()
                << " branches"
                << (marks.empty()
                        ? ""
                        : absl::StrCat(" (", marks.size(), " marked done by an operator)"))
                << ": re-driving phase 2";
  }
  for (const auto& [txid, one_phase] : state.one_phase()) {
    TXLOG(INFO) << "txid=" << txid << " recovered as a one-phase commit at "
                << one_phase.branch.participant << ": asking the branch for its outcome";
  }
  ExpiredMark expired;
  WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    e.Recover(state, Now(), out);
    expired = e.retained().expired();
    started_ = state.saw_expired();
    return 0;
  });
  if (state.saw_expired()) {
    ready(absl::OkStatus());
    return;
  }
  // Durable before any txid of this epoch is issued: a later start that
  // found no mark would take this epoch's outcomes for expired.
  log_->Append(kRecordExpired, EncodeExpired(expired), /*sync=*/true,
               [this, ready = std::move(ready)](absl::Status status) {
                 if (status.ok()) {
                   absl::MutexLock lock(&mu_);
                   started_ = true;
                 }
                 ready(status);
               });
}

absl::Status Runtime::Recover(const RecoveryState& state) {
  absl::Notification ready;
  absl::Status status;
  RecoverAsync(state, [&](absl::Status s) {
    status = std::move(s);
    ready.Notify();
  });
  ready.WaitForNotification();
  return status;
}

absl::StatusOr<BeginResult> Runtime::Begin(absl::Duration timeout) {
  return WithEngine([&](Engine& e, Actions* out)
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<BeginResult> {
                          if (absl::Status s = CheckAccepting(); !s.ok()) return s;
                          return e.Begin(timeout, Now(), out);
                        });
}

absl::StatusOr<ReserveResult> Runtime::Reserve(uint32_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAccepting(); !s.ok()) return s;
  return engine_.Reserve(count, timeout, Now());
}

absl::Status Runtime::Enlist(const std::string& txid, const BranchRef& branch, bool prepared,
                             bool named_in_commit) {
  return WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return e.Enlist(txid, branch, prepared, Now(), out, named_in_commit);
  });
}

absl::StatusOr<CommitResult> Runtime::Commit(const std::string& txid, absl::Time deadline) {
  absl::Notification done;
  absl::StatusOr<CommitResult> result;
  CommitAsync(txid, deadline, [&](absl::StatusOr<CommitResult> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

std::string Runtime::VoteKey(const std::string& participant) const {
  if (options_.vote_secret.empty()) return "";
  {
    absl::MutexLock lock(&vote_keys_mu_);
    if (auto it = vote_keys_.find(participant); it != vote_keys_.end()) return it->second;
  }
  std::string key = DeriveVoteKey(options_.vote_secret, participant);
  absl::MutexLock lock(&vote_keys_mu_);
  if (vote_keys_.size() < kMaxCachedVoteKeys) vote_keys_.emplace(participant, key);
  return key;
}

absl::Status Runtime::CheckVoteProofs(const std::string& txid,
                                      const std::vector<NamedBranch>& named) const {
  for (const NamedBranch& n : named) {
    if (n.vote_proof.empty()) continue;
    const VoteClaim claim{txid, n.ref.participant, n.ref.token, n.ref.endpoint};
    if (!VerifyVote(VoteKey(n.ref.participant), claim, n.vote_proof)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the vote proof of participant ", n.ref.participant, " for ", txid,
          " does not verify: it was not signed by that participant's agent under this "
          "coordinator's key for this branch and endpoint (altered, or signed for another "
          "coordinator); nothing was decided: abort the transaction"));
    }
  }
  return absl::OkStatus();
}

bool Runtime::ProofsCount(const std::string& txid) const {
  // Another epoch's txid is not this process's to commit (its keys were
  // another process's), and the call answers for it as usual.
  absl::StatusOr<Txid> id = ParseTxid(txid);
  return id.ok() && id->cluster == options_.engine.cluster_id && id->epoch == epoch();
}

void Runtime::EnlistSigned(Engine& e, const std::string& txid,
                           const std::vector<NamedBranch>& named, bool checked, Actions* out) {
  for (const NamedBranch& n : named) {
    if (n.vote_proof.empty()) continue;
    const VoteClaim claim{txid, n.ref.participant, n.ref.token, n.ref.endpoint};
    if (!checked && !VerifyVote(VoteKey(n.ref.participant), claim, n.vote_proof)) continue;
    e.Enlist(txid, n.ref, /*prepared=*/true, Now(), out, /*named_in_commit=*/true).IgnoreError();
  }
}

void Runtime::CommitAsync(const std::string& txid, std::vector<NamedBranch> named,
                          absl::Time deadline, CommitCallback done) {
  auto waiter = std::make_shared<Waiter>();
  waiter->done = [this, start = Now(),
                  done = std::move(done)](absl::StatusOr<CommitResult> result) {
    if (options_.on_commit_returned) {
      options_.on_commit_returned(Now() - start, result.status(), result.ok() && result->committed);
    }
    done(std::move(result));
  };
  // Branches that join by their proofs, just before the Commit runs.
  const bool enlists_proven =
      ProofsCount(txid) && std::any_of(named.begin(), named.end(),
                                       [](const NamedBranch& n) { return !n.vote_proof.empty(); });
  if (enlists_proven) {
    if (absl::Status checked = CheckVoteProofs(txid, named); !checked.ok()) {
      Fire(*waiter, checked);
      return;
    }
  }
  std::vector<BranchRef> refs;
  refs.reserve(named.size());
  for (const NamedBranch& n : named) refs.push_back(BranchRef{n.ref.participant, "", n.ref.token});
  absl::Status started =
      WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (absl::Status s = CheckAccepting(); !s.ok()) return s;
        if (enlists_proven) {
          // A bad list of names changes nothing, proven branches included
          // (without them, Engine::Commit's own check is first).
          if (absl::Status s = Engine::CheckNamed(refs, e.max_branches()); !s.ok()) return s;
        }
        waiters_[txid].push_back(waiter);
        // Checked above; a refusal (the transaction is over, a lost
        // branch) leaves the Commit below to answer what became of it.
        if (enlists_proven) EnlistSigned(e, txid, named, /*checked=*/true, out);
        absl::Status s = e.Commit(txid, refs, Now(), out);
        if (!s.ok()) RemoveWaiter(txid, waiter);
        return s;
      });
  if (!started.ok()) {
    Fire(*waiter, started);
    return;
  }
  if (waiter->fired.load() || deadline == absl::InfiniteFuture()) return;
  const Scheduler::TimerId timer =
      scheduler_->Schedule(deadline, [this, txid, weak = std::weak_ptr<Waiter>(waiter)] {
        std::shared_ptr<Waiter> waiter = weak.lock();
        if (waiter == nullptr || waiter->fired.load()) return;
        {
          absl::MutexLock lock(&mu_);
          RemoveWaiter(txid, waiter);
        }
        Fire(*waiter,
             absl::DeadlineExceededError(absl::StrCat(
                 "commit of ", txid, " is still undecided; it goes on: ask GetTransaction")));
      });
  waiter->timer.store(timer);
  // Decided meanwhile: Fire may have looked before the id was stored.
  if (waiter->fired.load()) scheduler_->Cancel(timer);
}

absl::Status Runtime::Abort(const std::string& txid, const std::vector<NamedBranch>& named) {
  const bool proofs_count = !named.empty() && ProofsCount(txid);
  return WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (proofs_count) EnlistSigned(e, txid, named, /*checked=*/false, out);
    return e.Abort(txid, "aborted by the client", Now(), out);
  });
}

absl::StatusOr<Outcome> Runtime::QueryOutcome(const std::string& txid,
                                              const std::string& participant) {
  absl::MutexLock lock(&mu_);
  return engine_.QueryOutcome(txid, participant);
}

absl::StatusOr<TransactionView> Runtime::Describe(const std::string& txid) {
  absl::MutexLock lock(&mu_);
  return engine_.Describe(txid, Now());
}

absl::StatusOr<ListPage> Runtime::List(const ListFilter& filter) {
  absl::MutexLock lock(&mu_);
  return engine_.List(filter, Now());
}

absl::StatusOr<AdminResult> Runtime::RetryPhase2(const std::string& txid) {
  return WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                        mu_) -> absl::StatusOr<AdminResult> {
    absl::StatusOr<size_t> resent = e.RetryPhase2(txid, Now(), out);
    if (!resent.ok()) return resent.status();
    TXLOG(INFO) << "txid=" << txid << " operator retry: phase 2 resent to " << *resent
                << " branch(es)";
    absl::StatusOr<TransactionView> view = e.Describe(txid, Now());
    if (!view.ok()) return view.status();
    return AdminResult{*std::move(view),
                       absl::StrCat("phase 2 resent to ", *resent, " branch(es), backoff reset")};
  });
}

absl::StatusOr<AdminResult> Runtime::ForceAbort(const std::string& txid,
                                                const std::string& reason) {
  return WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                        mu_) -> absl::StatusOr<AdminResult> {
    const std::string why =
        absl::StrCat("aborted by an operator", reason.empty() ? "" : ": ", reason);
    if (absl::Status s = e.ForceAbort(txid, why, Now(), out); !s.ok()) return s;
    TXLOG(WARNING) << "txid=" << txid << " " << why;
    absl::StatusOr<TransactionView> view = e.Describe(txid, Now());
    if (!view.ok()) return view.status();
    return AdminResult{*std::move(view), "aborted; Abort sent to its branches"};
  });
}

void Runtime::MarkBranchDoneAsync(const std::string& txid, const std::string& participant,
                                  const std::string& note, AdminCallback done) {
  // The engine marks the branch only once its MARK_DONE record is durable
  // (MarkDoneLogged), which answers this call; nothing waits meanwhile.
  bool logging = false;
  absl::Status started =
      WithEngine([&](Engine& e, Actions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        // A halted runtime carries out no append: nothing would answer.
        if (halted_) return absl::UnavailableError("coordinator is shutting down");
        if (absl::Status s = e.MarkBranchDone(txid, participant, note, Now(), out); !s.ok()) {
          return s;
        }
        logging = std::any_of(out->begin(), out->end(), [](const Action& a) {
          return std::holds_alternative<LogMarkDone>(a);
        });
        if (logging) {
          mark_waiters_[std::make_pair(txid, participant)].push_back(
              [this, txid, participant, note, done](const absl::Status& logged) {
                done(MarkDoneResult(txid, participant, note, /*logging=*/true, logged));
              });
        }
        return absl::OkStatus();
      });
  if (!started.ok()) {
    done(started);
    return;
  }
  if (!logging) done(MarkDoneResult(txid, participant, note, /*logging=*/false, absl::OkStatus()));
}

absl::StatusOr<AdminResult> Runtime::MarkDoneResult(const std::string& txid,
                                                    const std::string& participant,
                                                    const std::string& note, bool logging,
                                                    const absl::Status& logged) {
  if (!logged.ok()) {
    TXLOG(ERROR) << "txid=" << txid << " branch " << participant
                 << " NOT marked done: MARK_DONE could not be logged: " << logged;
    return absl::Status(
        absl::IsInvalidArgument(logged) ? absl::StatusCode::kInvalidArgument
                                        : absl::StatusCode::kUnavailable,
        absl::StrCat("branch ", participant, " of ", txid,
                     " is not marked done: its MARK_DONE record could not be logged (",
                     logged.message(),
                     "); after the coordinator restarts, `txctl show` tells whether the mark "
                     "was kept, and mark-done may be repeated"));
  }
  if (logging) {
    TXLOG(WARNING) << "txid=" << txid << " branch " << participant
                   << " marked done by an operator (HEURISTIC), MARK_DONE logged"
                   << (note.empty() ? "" : ": ") << note;
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<TransactionView> view = engine_.Describe(txid, Now());
  if (!view.ok()) return view.status();
  std::string message =
      logging ? absl::StrCat("branch ", participant, " marked done (heuristic)")
              : absl::StrCat("branch ", participant, " was already acknowledged: nothing to mark");
  if (view->state == TxState::kCommitted) absl::StrAppend(&message, "; transaction ended");
  return AdminResult{*std::move(view), std::move(message)};
}

absl::StatusOr<AdminResult> Runtime::MarkBranchDone(const std::string& txid,
                                                    const std::string& participant,
                                                    const std::string& note) {
  absl::Notification answered;
  absl::StatusOr<AdminResult> result;
  MarkBranchDoneAsync(txid, participant, note, [&](absl::StatusOr<AdminResult> r) {
    result = std::move(r);
    answered.Notify();
  });
  answered.WaitForNotification();
  return result;
}

std::vector<wal::Record> Runtime::CheckpointRecords() {
  std::vector<EncodedRecord> encoded;
  {
    absl::MutexLock lock(&mu_);
    encoded = engine_.Checkpoint();
  }
  std::vector<wal::Record> records;
  records.reserve(encoded.size());
  for (EncodedRecord& r : encoded) records.push_back({r.type, std::move(r.payload)});
  return records;
}

void Runtime::Halt() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
  halted_ = true;
  engine_.DropReservations();
}

void Runtime::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
  engine_.DropReservations();
}

EnginePolicy Runtime::policy() {
  absl::MutexLock lock(&mu_);
  return engine_.policy();
}

absl::Status Runtime::SetPolicy(const EnginePolicy& policy) {
  absl::MutexLock lock(&mu_);
  return engine_.SetPolicy(policy);
}

size_t Runtime::open_transactions() {
  absl::MutexLock lock(&mu_);
  return engine_.open_transactions();
}

EngineStats Runtime::stats() {
  absl::MutexLock lock(&mu_);
  return engine_.Stats(Now());
}

}  // namespace txcoord::coordinator
