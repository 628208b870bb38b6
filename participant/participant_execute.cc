// Participant::Execute: running a service's SQL inside a branch (re-apply
// the branch's changeset under a session, run, take the new changeset, roll
// back, lock its rows; wait and re-run when another branch holds one) or as
// one local transaction; then enlisting and, if asked, preparing.
#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/failpoint.h"
#include "common/logging.h"
#include "common/txid.h"
#include "common/vote_proof.h"
#include "participant/changeset.h"
#include "participant/lock_keys.h"
#include "participant/outbox_store.h"
#include "participant/participant_impl.h"
#include "participant/participant_observer.h"

namespace txcoord::participant {
namespace {

absl::Status LockTimeout(absl::Duration timeout, const LockConflict& conflict) {
  return absl::AbortedError(absl::StrCat("lock timeout after ", absl::FormatDuration(timeout), ": ",
                                         conflict.description, " is held by txid ",
                                         conflict.holder));
}

// The coordinator will not take the branch: the transaction is over.
bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kAborted;
}

}  // namespace

absl::StatusOr<ExecuteResult> Participant::Impl::Execute(
    const std::string& txid, const std::vector<SqlStatement>& statements, ExecuteOptions call) {
  const bool prepare = call.prepare;
  const absl::Time call_deadline = call.call_deadline;
  std::vector<OutboxMessage>& messages = call.messages;
  if (statements.empty() && messages.empty() && !(prepare && !txid.empty())) {
    return absl::InvalidArgumentError("no statements to run and no messages to publish");
  }
  if (absl::Status checked = CheckMessages(messages); !checked.ok()) return checked;
  const absl::Duration timeout = call.lock_timeout <= absl::ZeroDuration()
                                     ? policy().default_lock_timeout
                                     : std::min(call.lock_timeout, options_.max_lock_timeout);
  // Lock waits block this thread on a condition variable: real time, not
  // the participant's clock (see ParticipantOptions::clock).
  const absl::Time deadline = absl::Now() + timeout;
  if (txid.empty()) {
    if (prepare) return absl::InvalidArgumentError("prepare needs a txid");
    return ExecuteLocal(statements, messages, timeout, deadline, call_deadline);
  }
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<BranchPtr> claimed = ClaimBranch(txid, *parsed, deadline);
  if (!claimed.ok()) return claimed.status();
  const BranchPtr branch = *std::move(claimed);
  auto release = absl::MakeCleanup([this, &branch] { ReleaseBranch(branch); });

  std::vector<SqlResult> results;
  std::vector<std::string> message_ids;
  bool first_write = false;
  while (true) {
    std::vector<LockKey> wanted;
    std::optional<LockConflict> blocker;
    {
      absl::MutexLock lock(&mu_);
      if (branch->dropped) {
        return absl::AbortedError(
            absl::StrCat("branch ", txid, " was ended (aborted, committed or idle) meanwhile"));
      }
      if (branch->prepared) {
        return absl::FailedPreconditionError(
            absl::StrCat("branch ", txid, " was prepared meanwhile: no more statements"));
      }
      if (branch->messages.size() + messages.size() > options_.outbox.max_messages) {
        return absl::InvalidArgumentError(absl::StrCat(
            "too many messages: branch ", txid, " has ", branch->messages.size(),
            " and this call adds ", messages.size(), "; at most ", options_.outbox.max_messages,
            " per branch (the agent's --outbox_max_messages)"));
      }
      // Messages alone change no row: no SQL to run again, no locks.
      absl::StatusOr<Attempt> attempt =
          statements.empty()
              ? Attempt{}
              : RunBranchAttempt(*branch, statements, call_deadline, /*keep_open=*/prepare);
      if (!attempt.ok()) return attempt.status();
      // Taken while still holding the connection, so that no branch commits
      // between this run and the locks that make its results hold.
      blocker = locks_.TryAcquire(txid, attempt->keys);
      if (!blocker.has_value()) {
        const bool wrote_before = branch->HasWrites();
        if (!statements.empty()) branch->changeset = std::move(attempt->changeset);
        for (OutboxMessage& message : messages) {
          message_ids.push_back(BranchMessageId(txid, options_.name, branch->messages.size()));
          branch->messages.push_back(std::move(message));
        }
        first_write = !branch->enlisted && !wrote_before && branch->HasWrites();
        branch->last_used = Now();
        results = std::move(attempt->results);
        if (!prepare) break;
        if (!branch->HasWrites()) {
          // Nothing to vote on. A branch the coordinator knows stays, so that
          // its Prepare gets READ_ONLY rather than NO.
          if (!branch->enlisted) DropLocked(branch);
          return ExecuteResult{std::move(results), Vote::kReadOnly};
        }
        if (absl::Status status = PrepareLocked(*branch, std::move(attempt->open)); !status.ok()) {
          DropLocked(branch);
          return absl::Status(status.code(), absl::StrCat("cannot prepare, branch rolled back: ",
                                                          status.message()));
        }
        break;
      }
      wanted = std::move(attempt->keys);
      attempt->open.reset();  // rolled back before the lock wait
    }
    // The run's results are discarded: the holder may change what it saw.
    if (options_.on_lock_wait) options_.on_lock_wait(txid, blocker->holder);
    if (std::optional<LockConflict> conflict = locks_.WaitUntilFree(txid, wanted, deadline)) {
      if (options_.observer != nullptr) options_.observer->OnLockTimeout();
      return LockTimeout(timeout, *conflict);
    }
  }
  const uint64_t token = branch->token;  // fixed from ClaimBranch on
  if (!prepare && !first_write) {
    ExecuteResult result{std::move(results), Vote::kNo, std::move(message_ids)};
    if (branch->enlisted) result.branch_token = token;
    return result;
  }
  absl::StatusOr<ExecuteResult> reported =
      call.named_in_commit
          ? SendToCoordinator(branch, std::move(results), /*with_vote=*/prepare,
                              /*signed_vote=*/prepare && call.carries_vote_proof)
          : ReportToCoordinator(branch, std::move(results), /*with_vote=*/prepare, call_deadline);
  if (reported.ok()) {
    reported->message_ids = std::move(message_ids);
    reported->branch_token = token;
  }
  return reported;
}

absl::Status Participant::Impl::DurableBeforeVote(const Branch& branch) {
  // The vote promises the prepare: it must be durable before it leaves.
  if (absl::Status durable = MakeDurable(); !durable.ok()) {
    return absl::Status(
        durable.code(),
        absl::StrCat("branch ", branch.txid,
                     " is prepared but not known durable; no vote sent: ", durable.message()));
  }
  TXCOORD_FAILPOINT("after-prepare-durable");
  return absl::OkStatus();
}

absl::StatusOr<ExecuteResult> Participant::Impl::SendToCoordinator(const BranchPtr& branch,
                                                                   std::vector<SqlResult> results,
                                                                   bool with_vote,
                                                                   bool signed_vote) {
  // The client's Commit names this branch, so the coordinator waits for
  // its vote: that can leave after the answer, once a sync covers the
  // prepare, rather than hold this call through one.
  if (with_vote && MaybeDeferVote(branch)) {
    if (options_.observer != nullptr) options_.observer->OnVoteDeferred();
    ExecuteResult result{std::move(results), Vote::kYes};
    result.vote_deferred = true;
    return result;
  }
  if (with_vote) {
    if (absl::Status durable = DurableBeforeVote(*branch); !durable.ok()) return durable;
  }
  std::optional<Enlister::VoteSigning> signing;
  if (signed_vote) signing = enlister_->VoteSigningFor(branch->txid);
  if (signing.has_value()) {
    // The proof stands for the Enlist: the coordinator takes the vote from
    // the client's Commit. Prepared and durable, so only the coordinator's
    // outcome ends the branch (QueryOutcome, should no Commit come).
    {
      absl::MutexLock lock(&mu_);
      branch->enlisted = true;
      branch->vote_unsent = true;
    }
    ExecuteResult result{std::move(results), Vote::kYes};
    result.endpoint = std::move(signing->endpoint);
    result.vote_proof = SignVote(
        signing->key, VoteClaim{branch->txid, options_.name, branch->token, result.endpoint});
    if (options_.observer != nullptr) options_.observer->OnVoteSigned();
    return result;
  }
  {
    // Set before the answer can arrive: a refusal then finds it enlisted.
    absl::MutexLock lock(&mu_);
    branch->enlisted = true;
  }
  // The client's Commit names this branch, so the coordinator waits for
  // this enlistment (or aborts without it): nothing to wait for here.
  EnlistInBackground(branch, with_vote ? BackgroundEnlist::kVote : BackgroundEnlist::kBranch);
  // An answer that came at once (no route to the txid's coordinator, say)
  // has rolled the branch back already: say so now rather than let the
  // Commit wait out its prepare timeout for an enlistment that never went.
  absl::MutexLock lock(&mu_);
  if (branch->dropped && !branch->enlist_failure.ok()) {
    return absl::AbortedError(absl::StrCat("enlisting the branch failed; branch rolled back: ",
                                           branch->enlist_failure.ToString()));
  }
  return ExecuteResult{std::move(results), with_vote ? Vote::kYes : Vote::kNo};
}

bool Participant::Impl::MaybeDeferVote(const BranchPtr& branch) {
  if (vote_scope_ == nullptr) return false;  // no scheduler to send it on
  switch (options_.vote_deferral) {
    case VoteDeferral::kNever:
      return false;
    case VoteDeferral::kWhenContended:
      if (!wal_sync_.Contended()) return false;
      break;
    case VoteDeferral::kAlways:
      break;
  }
  {
    absl::MutexLock lock(&mu_);
    // Enlisted by an earlier Execute: the coordinator asks it with Prepare
    // at Commit rather than wait for its vote, so deferring gains nothing.
    if (branch->enlisted) return false;
    // Enlisted, so that a refusal finds it so; its vote counts as on its
    // way, so that the resolver neither asks about it nor sends it first.
    branch->enlisted = true;
    branch->vote_sending = true;
    deferred_votes_.push_back(branch);
    if (deferred_votes_.size() > 1) return true;  // a run is already due
  }
  vote_scope_->After(absl::ZeroDuration(), [this] { SendDeferredVotes(); });
  return true;
}

void Participant::Impl::SendDeferredVotes() {
  absl::MutexLock run(&vote_run_mu_);
  std::vector<BranchPtr> votes;
  {
    absl::MutexLock lock(&mu_);
    votes.swap(deferred_votes_);
  }
  if (votes.empty()) return;  // a run before this one took them
  TXCOORD_FAILPOINT("before-deferred-votes-durable");
  // Each branch was prepared (its commit counted) before it was queued, so
  // one wait covers them all, and usually shares a sync already running.
  const absl::Status durable = MakeDurable();
  if (durable.ok()) TXCOORD_FAILPOINT("after-deferred-votes-durable");
  std::vector<BranchPtr> sending;
  {
    absl::MutexLock lock(&mu_);
    for (const BranchPtr& branch : votes) {
      if (!branch->dropped && durable.ok()) {
        sending.push_back(branch);
        continue;
      }
      // Never sent: a Commit that waits for it aborts without it, and the
      // resolver asks the coordinator how a branch still prepared ends.
      branch->vote_sending = false;
      if (!branch->dropped) {
        TXLOG(ERROR) << "txid=" << branch->txid << " the prepared branch is not known durable ("
                     << durable << "): its deferred vote is not sent";
      }
    }
  }
  for (const BranchPtr& branch : sending) {
    EnlistInBackground(branch, BackgroundEnlist::kLateVote);
  }
}

bool Participant::Impl::SendSignedVote(const std::string& txid) {
  BranchPtr branch;
  {
    absl::MutexLock lock(&mu_);
    branch = FindLocked(txid);
    if (branch == nullptr || !branch->prepared || branch->dropped || !branch->vote_unsent) {
      return false;
    }
    branch->vote_unsent = false;
    branch->vote_sending = true;
  }
  TXLOG(INFO) << "txid=" << txid
              << " no outcome yet for the prepared branch, whose vote the coordinator may not have:"
                 " sending it by Enlist";
  EnlistInBackground(branch, BackgroundEnlist::kLateVote);
  return true;
}

void Participant::Impl::EnlistInBackground(const BranchPtr& branch, BackgroundEnlist what) {
  enlister_->EnlistAsync(branch->txid, branch->token,
                         /*prepared=*/what != BackgroundEnlist::kBranch,
                         [liveness = liveness_, branch, what](absl::Status status) {
                           absl::MutexLock lock(&liveness->mu);
                           if (liveness->impl != nullptr) {
                             liveness->impl->OnEnlistAnswered(branch, what, status);
                           }
                         });
}

void Participant::Impl::OnEnlistAnswered(const BranchPtr& branch, BackgroundEnlist what,
                                         const absl::Status& status) {
  const bool late = what == BackgroundEnlist::kLateVote;
  if (status.ok()) {
    NoteServingEpoch(*branch);
    absl::MutexLock lock(&mu_);
    branch->enlist_taken = true;
    if (late) branch->vote_sending = false;
    return;
  }
  absl::MutexLock lock(&mu_);
  if (late) branch->vote_sending = false;
  if (branch->dropped) return;  // ended meanwhile (the coordinator's Abort, a Release)
  if (branch->prepared) {
    // Only the coordinator's outcome may end it: an earlier Enlist of the
    // branch may have been taken and the coordinator's own Prepare may
    // have counted its YES, so QueryOutcome says which.
    if (IsRefusal(status)) branch->vote_refused = true;
    // A signed vote sent late that did not get through (not processed:
    // the coordinator out of reach, the deadline, an overload) is sent
    // again by the resolver rather than asked about: for a reserved txid
    // not begun yet, asking would use the txid up under a live
    // transaction. Any other answer is asked about, so that no error
    // repeated forever keeps the branch in doubt.
    if (late && (status.code() == absl::StatusCode::kUnavailable ||
                 status.code() == absl::StatusCode::kDeadlineExceeded ||
                 status.code() == absl::StatusCode::kResourceExhausted)) {
      branch->vote_unsent = true;
    }
    TXLOG(WARNING) << "txid=" << branch->txid << " the vote of the prepared branch "
                   << (IsRefusal(status) ? "was refused: " : "did not reach the coordinator: ")
                   << status << "; the branch stays in doubt until the coordinator's outcome";
    return;
  }
  // The Commit that names this branch aborts without it; free its locks now.
  branch->enlist_failure = status;
  TXLOG(WARNING) << "txid=" << branch->txid << " enlisting the branch "
                 << (what != BackgroundEnlist::kBranch ? "with its vote " : "") << "failed ("
                 << status << "): rolled back";
  if (absl::Status rolled_back = AbortLocked(branch, RollbackReason::kEnlistRefused);
      !rolled_back.ok()) {
    TXLOG(ERROR) << "txid=" << branch->txid
                 << " rolling back an unenlisted branch: " << rolled_back;
  }
}

uint64_t Participant::Impl::ServingEpoch(const std::string& coordinator) const {
  absl::MutexLock lock(&epochs_mu_);
  const auto it = serving_epochs_.find(coordinator);
  return it == serving_epochs_.end() ? 0 : it->second;
}

std::string Participant::Impl::EpochLeftBehind(const Branch& branch, uint64_t serving) {
  return absl::StrCat("of epoch ", branch.epoch, " (coordinator ", branch.coordinator,
                      " now serves epoch ", serving, ", so its transaction is aborted)");
}

void Participant::Impl::NoteServingEpoch(const Branch& branch) {
  if (branch.epoch == 0) return;
  {
    absl::MutexLock lock(&epochs_mu_);
    uint64_t& serving = serving_epochs_[branch.coordinator];
    if (branch.epoch == serving) return;
    // The latest answer's epoch, also a lower one: a coordinator restored
    // from a backup serves an epoch below what it served before, and its
    // live transactions must not look left behind. (A paused former owner
    // answering late lowers it too, until the next answer of the owner;
    // that only delays a rollback.)
    const uint64_t before = serving;
    serving = branch.epoch;
    if (branch.epoch < before) {
      TXLOG(WARNING) << "txid=" << branch.txid << " coordinator " << branch.coordinator
                     << " took an Enlist of epoch " << branch.epoch << ", below epoch " << before
                     << " it served before: a former owner answering late, or a coordinator "
                        "started on an old copy of its data directory (which issues txids "
                        "again; see docs/operations.md, \"The WAL is corrupt\")";
      return;
    }
  }
  absl::MutexLock lock(&mu_);
  RollBackStaleLocked(Now(), /*idle_timeout=*/absl::ZeroDuration(),
                      {{branch.coordinator, branch.epoch}});
}

absl::Status Participant::Impl::ResendVote(const Branch& branch, absl::Status status,
                                           absl::Time call_deadline) {
  // Room left to answer before the caller's deadline: an ABORTED that
  // arrives is worth more than a DEADLINE_EXCEEDED that says nothing.
  constexpr absl::Duration kAnswerMargin = absl::Milliseconds(100);
  constexpr absl::Duration kMaxBackoff = absl::Milliseconds(500);
  // This thread sleeps between resends: real time, like lock waits.
  const absl::Time give_up =
      std::min(absl::Now() + options_.vote_retry_time, call_deadline - kAnswerMargin);
  absl::Duration backoff = options_.vote_retry_backoff;
  while (!status.ok() && !IsRefusal(status) && absl::Now() + backoff < give_up) {
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    TXLOG(INFO) << "txid=" << branch.txid << " resending the branch's vote: " << status;
    // Idempotent: the same token names the same branch.
    status = enlister_->Enlist(branch.txid, branch.token, /*prepared=*/true);
  }
  return status;
}

absl::StatusOr<ExecuteResult> Participant::Impl::ReportToCoordinator(const BranchPtr& branch,
                                                                     std::vector<SqlResult> results,
                                                                     bool with_vote,
                                                                     absl::Time call_deadline) {
  if (with_vote) {
    if (absl::Status durable = DurableBeforeVote(*branch); !durable.ok()) return durable;
  }
  absl::Status enlisted = enlister_->Enlist(branch->txid, branch->token, with_vote);
  if (with_vote) enlisted = ResendVote(*branch, std::move(enlisted), call_deadline);
  if (enlisted.ok()) NoteServingEpoch(*branch);
  absl::MutexLock lock(&mu_);
  if (enlisted.ok()) {
    branch->enlisted = true;
    branch->enlist_taken = true;
    return ExecuteResult{std::move(results), with_vote ? Vote::kYes : Vote::kNo};
  }
  if (with_vote) {
    // The branch stays prepared either way: the coordinator's own Prepare
    // may have reached it meanwhile and counted its YES, so only the
    // coordinator's outcome (QueryOutcome: ABORTED once the transaction is
    // aborted or past its deadline) may end it. The answer is ABORTED all
    // the same, so that the client never commits a transaction whose
    // coordinator may not know this branch: that Commit could commit the
    // other branches without it.
    if (IsRefusal(enlisted)) {
      if (!branch->dropped) branch->vote_refused = true;
      return absl::AbortedError(absl::StrCat(
          "the coordinator refused the vote of prepared branch ", branch->txid,
          " (the transaction is over): ", enlisted.message(),
          "; the branch stays in doubt here until the coordinator's outcome (ABORTED) is known"));
    }
    return absl::AbortedError(absl::StrCat(
        "the vote of prepared branch ", branch->txid, " did not reach the coordinator (",
        enlisted.ToString(),
        "): do not commit this transaction (the coordinator may not know this branch, so a "
        "Commit could commit the other branches without it); call Abort on the txid and retry "
        "the whole transaction. The branch stays in doubt here and ends ABORTED through "
        "QueryOutcome once the transaction is aborted or past its deadline"));
  }
  // A first write that may be unknown to the coordinator: roll the branch
  // back (a Prepare for it then votes NO). A branch that the coordinator's
  // own Prepare reached meanwhile is its to decide.
  if (!branch->dropped && !branch->prepared) {
    if (absl::Status status = AbortLocked(branch, RollbackReason::kEnlistRefused); !status.ok()) {
      TXLOG(ERROR) << "txid=" << branch->txid << " rolling back refused branch: " << status;
    }
  }
  if (IsRefusal(enlisted)) {
    return absl::AbortedError(
        absl::StrCat("the coordinator refused the branch's enlistment; branch rolled back: ",
                     enlisted.message()));
  }
  return absl::Status(enlisted.code(), absl::StrCat("enlisting the branch failed; branch rolled "
                                                    "back: ",
                                                    enlisted.message()));
}

absl::StatusOr<Participant::Impl::BranchPtr> Participant::Impl::ClaimBranch(const std::string& txid,
                                                                            const Txid& id,
                                                                            absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  bool timed_out = false;
  while (true) {
    BranchPtr branch = FindLocked(txid);
    // Only a branch of an epoch left behind is refused here. A new txid
    // goes on to its Enlist, which the coordinator refuses if it is dead
    // (NOT_FOUND, in the words a client recognises), and whose OK teaches
    // this agent a lower epoch after a coordinator was restored from a
    // backup (NoteServingEpoch).
    if (branch != nullptr && !branch->prepared && !branch->busy) {
      if (const uint64_t serving = ServingEpoch(id.cluster); id.epoch < serving) {
        RollBackUnpreparedLocked(branch, RollbackReason::kEpochLeftBehind,
                                 EpochLeftBehind(*branch, serving));
        return absl::AbortedError(absl::StrCat(
            "txid ", txid, " is of epoch ", id.epoch, " and coordinator ", id.cluster,
            " now serves epoch ", serving,
            ": the transaction was aborted when its coordinator restarted or was replaced"));
      }
    }
    if (branch == nullptr) {
      branch = std::make_shared<Branch>();
      branch->txid = txid;
      branch->coordinator = id.cluster;
      branch->epoch = id.epoch;
      branch->token = next_token_++;
      if (branch->token == 0) branch->token = next_token_++;
      branch->busy = true;
      branch->last_used = Now();
      branches_[txid] = branch;
      return branch;
    }
    if (branch->prepared) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch ", txid, " is prepared: no more statements may run in it"));
    }
    if (!branch->busy) {
      branch->busy = true;
      return branch;
    }
    if (timed_out) {
      return absl::AbortedError(absl::StrCat("another call on branch ", txid, " is still running"));
    }
    // Calls on one branch run one at a time: each builds on the last one's
    // changeset.
    timed_out = branch_released_.WaitWithDeadline(&mu_, deadline);
  }
}

void Participant::Impl::ReleaseBranch(const BranchPtr& branch) {
  absl::MutexLock lock(&mu_);
  branch->busy = false;
  branch->last_used = Now();
  // A branch that never wrote leaves nothing behind.
  if (!branch->dropped && !branch->prepared && !branch->enlisted && !branch->HasWrites()) {
    DropLocked(branch);
  }
  branch_released_.SignalAll();
}

absl::StatusOr<Participant::Impl::Attempt> Participant::Impl::RunBranchAttempt(
    const Branch& branch, const std::vector<SqlStatement>& statements, absl::Time call_deadline,
    bool keep_open) {
  // Execute checks both under this lock hold: a prepared branch's
  // changeset is what it voted YES on, and never grows.
  TXCOORD_CHECK(!branch.prepared && !branch.dropped)
      << "txid=" << branch.txid << " re-executed after it was prepared or ended";
  auto tx = std::make_unique<WriteTransaction>(db(), &statements_);
  absl::Status status = BeginWithSchemaLocked(*tx);
  if (!status.ok()) return status;
  if (keep_open) {
    status = statements_.Run("SAVEPOINT txcoord_attempt");
    if (!status.ok()) return status;
  }
  Attempt attempt;
  {
    // Recording starts before the re-apply, so that the new changeset holds
    // the old changes and the new ones together.
    absl::StatusOr<std::unique_ptr<ChangeRecorder>> recorder =
        ChangeRecorder::Start(db(), &schema_);
    if (!recorder.ok()) return recorder.status();
    if (absl::Status applied = applier_.Apply(schema_, branch.changeset); !applied.ok()) {
      TXLOG(ERROR) << "txid=" << branch.txid << " re-applying the branch's changes: " << applied;
      return absl::InternalError(
          absl::StrCat("re-applying the branch's earlier changes failed "
                       "(changed outside the agent?): ",
                       applied.message()));
    }
    authorizer_.ResetBatch();
    absl::StatusOr<std::vector<SqlResult>> results =
        RunStatements(db(), authorizer_, Authorizer::Mode::kBranch, statements, Limits(),
                      call_deadline, &kept_statements_);
    if (!results.ok()) return results.status();
    absl::Status recordable = CheckNoNullKeys(db(), schema_, authorizer_.tables_written());
    if (!recordable.ok()) return recordable;
    attempt.results = *std::move(results);
    absl::StatusOr<std::string> changeset = (*recorder)->Changeset();
    if (!changeset.ok()) return changeset.status();
    attempt.changeset = *std::move(changeset);
  }
  if (keep_open) {
    status = statements_.Run("ROLLBACK TO txcoord_attempt");
    if (status.ok()) status = statements_.Run("RELEASE txcoord_attempt");
    if (!status.ok()) return status;
    attempt.open = std::move(tx);
  } else {
    tx->Rollback();
  }
  // After the rollback, rows are read as committed: see LockKeysForChangeset.
  absl::StatusOr<std::vector<LockKey>> keys =
      LockKeysForChangeset(db(), schema_, attempt.changeset, branch.txid, &statements_);
  if (!keys.ok()) return keys.status();
  attempt.keys = *std::move(keys);
  return attempt;
}

absl::StatusOr<ExecuteResult> Participant::Impl::ExecuteLocal(
    const std::vector<SqlStatement>& statements, const std::vector<OutboxMessage>& messages,
    absl::Duration timeout, absl::Time deadline, absl::Time call_deadline) {
  while (true) {
    std::vector<LockKey> wanted;
    std::optional<LockConflict> blocker;
    {
      absl::MutexLock lock(&mu_);
      WriteTransaction tx(db(), &statements_);
      absl::Status status = BeginWithSchemaLocked(tx);
      if (!status.ok()) return status;
      absl::StatusOr<std::unique_ptr<ChangeRecorder>> recorder =
          ChangeRecorder::Start(db(), &schema_);
      if (!recorder.ok()) return recorder.status();
      authorizer_.ResetBatch();
      absl::StatusOr<std::vector<SqlResult>> results =
          RunStatements(db(), authorizer_, Authorizer::Mode::kLocal, statements, Limits(),
                        call_deadline, &kept_statements_);
      if (!results.ok()) return results.status();
      // A local write must not pass a branch's row lock either, or a YES
      // vote could break. Schema changes cannot be checked that way (the
      // session cannot follow them): they are the operator's to schedule.
      if (!authorizer_.batch_had_ddl()) {
        absl::StatusOr<std::string> changeset = (*recorder)->Changeset();
        if (!changeset.ok()) return changeset.status();
        absl::StatusOr<std::vector<LockKey>> keys =
            LockKeysForChangeset(db(), schema_, *changeset, "", &statements_);
        if (!keys.ok()) return keys.status();
        blocker = locks_.FindConflict("", *keys);
        if (blocker.has_value()) wanted = *std::move(keys);
      }
      recorder->reset();
      if (wanted.empty()) {
        std::vector<std::string> ids;
        if (!messages.empty()) {
          const std::string batch = absl::StrCat(local_id_prefix_, "-", next_local_++);
          for (size_t i = 0; i < messages.size(); ++i) ids.push_back(absl::StrCat(batch, "/", i));
          status = InsertOutboxRows(db(), "", ids, messages, Now());
          if (!status.ok()) return status;
        }
        status = tx.Commit();
        if (!status.ok()) return status;
        NotifyOutboxLocked(messages.size());
        return ExecuteResult{*std::move(results), Vote::kNo, std::move(ids)};
      }
    }
    if (options_.on_lock_wait) options_.on_lock_wait("", blocker->holder);
    if (std::optional<LockConflict> conflict = locks_.WaitUntilFree("", wanted, deadline)) {
      if (options_.observer != nullptr) options_.observer->OnLockTimeout();
      return LockTimeout(timeout, *conflict);
    }
  }
}

}  // namespace txcoord::participant
