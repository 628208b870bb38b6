// Engine, the COMMIT side: the COMMIT record logged, phase 2 with its
// retries and backoff, one-phase outcomes, END, and recovery of COMMIT
// records from the log (and what checkpoints carry). The rest is in
// engine.cc.
#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/heuristic.h"
#include "common/txid.h"
#include "coordinator/engine.h"
#include "coordinator/records.h"

namespace txcoord::coordinator {
namespace {

// What waiting clients hear when a forced record's append failed.
Decided OutcomeUnknown(const std::string& txid, const absl::Status& log_error) {
  return Decided{txid, false, "",
                 absl::UnavailableError(absl::StrCat(
                     "commit outcome unknown: the coordinator's log failed (", log_error.message(),
                     "); it is settled when the coordinator restarts"))};
}

}  // namespace

void Engine::OnCommitLogged(const std::string& txid, const absl::Status& status, absl::Time now,
                            Actions* out) {
  // Invariant: a LogCommit is answered once, and nothing ends a transaction
  // while its COMMIT is being logged (Abort, timers and votes all refuse).
  auto it = txns_.find(txid);
  TXCOORD_CHECK(it != txns_.end()) << "txid=" << txid << " COMMIT logged for no open transaction";
  Txn& txn = it->second;
  TXCOORD_CHECK(txn.logging && txn.state == TxState::kPreparing && !txn.one_phase)
      << "txid=" << txid << " COMMIT logged while " << TxStateName(txn.state)
      << (txn.logging ? "" : ", not being logged") << (txn.one_phase ? ", one-phase" : "");
  if (!status.ok()) {
    // The record may or may not be durable: neither outcome can be promised.
    // The transaction stays undecided here; recovery settles it from the log.
    out->push_back(OutcomeUnknown(txid, status));
    return;
  }
  txn.logging = false;
  txn.state = TxState::kCommitting;
  txn.deadline = absl::InfiniteFuture();
  txn.decided = now;
  ++stats_.committed;
  Retain(txid, now);
  out->push_back(Decided{txid, true, ""});
  StartPhase2(txid, txn, now, out);
}

void Engine::OnOnePhaseLogged(const std::string& txid, const absl::Status& status, absl::Time now,
                              Actions* out) {
  // Invariant: as for COMMIT; a one-phase transaction cannot abort.
  auto it = txns_.find(txid);
  TXCOORD_CHECK(it != txns_.end())
      << "txid=" << txid << " ONE_PHASE logged for no open transaction";
  Txn& txn = it->second;
  TXCOORD_CHECK(txn.one_phase && txn.logging && txn.state == TxState::kPreparing &&
                txn.branches.size() == 1)
      << "txid=" << txid << " ONE_PHASE logged while " << TxStateName(txn.state)
      << (txn.logging ? "" : ", not being logged") << (txn.one_phase ? "" : ", not one-phase");
  if (!status.ok()) {
    // The record may be durable, and then a restart asks the branch, which
    // may commit: the outcome cannot be promised either way.
    out->push_back(OutcomeUnknown(txid, status));
    return;
  }
  txn.logging = false;
  SendPhase2(txid, txn, txn.branches[0], now, out);
}

void Engine::StartPhase2(const std::string& txid, Txn& txn, absl::Time now, Actions* out) {
  TXCOORD_CHECK(txn.state == TxState::kCommitting && !txn.logging)
      << "txid=" << txid << " phase 2 started while " << TxStateName(txn.state);
  for (Branch& b : txn.branches) {
    if (b.vote == Vote::kYes && !b.acknowledged) SendPhase2(txid, txn, b, now, out);
  }
}

void Engine::SendPhase2(const std::string& txid, Txn& txn, Branch& branch, absl::Time now,
                        Actions* out) {
  // Only a decided branch hears phase 2: the one-phase branch once its
  // record is durable, or a YES branch of a durable COMMIT.
  TXCOORD_CHECK(!branch.acknowledged && !txn.logging &&
                (txn.one_phase ? txn.state == TxState::kPreparing && &branch == &txn.branches[0]
                               : txn.state == TxState::kCommitting && branch.vote == Vote::kYes))
      << "txid=" << txid << " phase 2 to " << branch.ref.participant << " while "
      << TxStateName(txn.state) << " with vote " << VoteName(branch.vote)
      << (branch.acknowledged ? ", acknowledged" : "");
  branch.last_attempt = now;
  if (txn.one_phase) {
    out->push_back(SendCommitOnePhase{txid, branch.ref});
  } else {
    out->push_back(SendCommit{txid, branch.ref});
  }
}

void Engine::ArmRetry(const std::string& txid, Txn& txn, Branch& branch, absl::Time now,
                      Actions* out) {
  ++stats_.phase2_retries;
  ++branch.backoff_level;
  // A new generation retires any retry timer still pending for the branch.
  TimerId timer{txid, txn.one_phase ? TimerKind::kRetryOnePhase : TimerKind::kRetryPhase2,
                branch.ref.participant, ++branch.retry_generation};
  out->push_back(ArmTimer{std::move(timer), now + Backoff(branch.backoff_level)});
}

void Engine::OnPhase2Result(const std::string& txid, const std::string& participant,
                            const absl::Status& status, absl::Time now, Actions* out) {
  auto it = txns_.find(txid);
  if (it == txns_.end()) return;  // a late answer: the transaction ended
  Txn& txn = it->second;
  // Invariant: Commit goes only to YES branches of a COMMITTING
  // transaction, which stays COMMITTING until it ends.
  Branch* b = FindBranch(txn, participant);
  TXCOORD_CHECK(txn.state == TxState::kCommitting && b != nullptr && b->vote == Vote::kYes)
      << "txid=" << txid << " phase-2 result from " << participant << " while "
      << TxStateName(txn.state);
  if (b->acknowledged) return;  // answered twice (an operator's retry), or marked done
  if (!status.ok()) {
    ++b->attempts;
    b->last_error = status.ToString();
    if (IsHeuristicMixed(status)) {
      // An operator forced the other outcome at the agent; asking again
      // cannot change it. The branch waits for a repair and MarkBranchDone.
      b->heuristic_mixed = true;
      return;
    }
    ArmRetry(txid, txn, *b, now, out);
    return;
  }
  b->acknowledged = true;
  MaybeEnd(txid, txn, now, out);
}

bool Engine::MaybeEnd(const std::string& txid, const Txn& txn, absl::Time now, Actions* out) {
  TXCOORD_CHECK(txn.state == TxState::kCommitting && !txn.one_phase)
      << "txid=" << txid << " ended as committed while " << TxStateName(txn.state);
  for (const Branch& b : txn.branches) {
    if (b.vote == Vote::kYes && !b.acknowledged) return false;
  }
  // Again: a phase 2 that outlasted the window must not end into "expired".
  Retain(txid, now);
  out->push_back(LogEnd{txid});
  Finish(txid, TxState::kCommitted, "");
  return true;
}

void Engine::OnOnePhaseResult(const std::string& txid, const std::string& participant,
                              const absl::StatusOr<bool>& committed, absl::Time now, Actions* out) {
  auto it = txns_.find(txid);
  if (it == txns_.end()) return;  // a late answer: the transaction ended
  Txn& txn = it->second;
  // Invariant: CommitOnePhase is sent only once ONE_PHASE is durable, to
  // the only branch, and the transaction stays one-phase until it ends.
  TXCOORD_CHECK(txn.one_phase && txn.state == TxState::kPreparing && !txn.logging &&
                txn.branches.size() == 1 && txn.branches[0].ref.participant == participant)
      << "txid=" << txid << " one-phase result from " << participant << " while "
      << TxStateName(txn.state) << (txn.one_phase ? "" : ", not one-phase")
      << (txn.logging ? ", ONE_PHASE not yet durable" : "");
  Branch& b = txn.branches[0];
  if (!committed.ok()) {
    // The call may have reached the branch: only its answer decides. The
    // branch keeps one-phase outcomes, so asking again is safe.
    ++b.attempts;
    b.last_error = committed.status().ToString();
    ArmRetry(txid, txn, b, now, out);
    return;
  }
  // The END says which: its ONE_PHASE record alone would make a restart
  // ask the branch again, which answers the same while it keeps the outcome.
  out->push_back(LogEnd{txid, *committed});
  if (*committed) {
    ++stats_.committed;
    b.vote = Vote::kYes;
    b.acknowledged = true;
    Retain(txid, now);
    out->push_back(Decided{txid, true, ""});
    Finish(txid, TxState::kCommitted, "");
  } else {
    ++stats_.aborted;
    b.vote = Vote::kNo;
    std::string reason = absl::StrCat("branch ", participant, " could not commit");
    out->push_back(Decided{txid, false, reason});
    Finish(txid, TxState::kAborted, reason);
  }
}

void Engine::RecoverCommitted(const std::string& txid, const std::vector<BranchRef>& branches,
                              absl::Time now, Actions* out) {
  RecoverCommitted(txid, branches, {}, now, out);
}

void Engine::RecoverCommitted(const std::string& txid, const std::vector<BranchRef>& branches,
                              const std::vector<LogMarkDone>& marks, absl::Time now, Actions* out) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (parsed.ok() && parsed->cluster == options_.cluster_id && parsed->epoch == options_.epoch) {
    next_sequence_ = std::max(next_sequence_, parsed->sequence + 1);
  }
  Retain(txid, now);
  Txn& txn = txns_[txid];
  txn.state = TxState::kCommitting;
  txn.decided = now;
  txn.branches.clear();
  for (const BranchRef& ref : branches) {
    Branch b{ref};
    b.vote = Vote::kYes;
    txn.branches.push_back(std::move(b));
  }
  for (const LogMarkDone& mark : marks) {
    Branch* b = FindBranch(txn, mark.participant);
    if (b == nullptr) continue;
    b->acknowledged = true;
    b->heuristic = true;
    b->mark_note = mark.note;
  }
  StartPhase2(txid, txn, now, out);
  MaybeEnd(txid, txn, now, out);
}

void Engine::Recover(const RecoveryState& state, absl::Time now, Actions* out) {
  retained_ = state.outcomes();
  if (!state.saw_expired() && options_.epoch > 0) {
    // The log predates retained outcomes: what the earlier epochs decided
    // is no longer known, except the commits still in the log.
    retained_.ExpireThrough(ExpiredMark{options_.epoch - 1, UINT64_MAX});
  }
  PruneRetained(now);
  for (const auto& [txid, commit] : state.unfinished()) {
    RecoverCommitted(txid, commit.branches, state.marks(txid), now, out);
  }
  for (const auto& [txid, one_phase] : state.one_phase()) RecoverOnePhase(one_phase, now, out);
}

void Engine::RecoverOnePhase(const LogOnePhase& one_phase, absl::Time now, Actions* out) {
  Txn& txn = txns_[one_phase.txid];
  txn.state = TxState::kPreparing;
  txn.one_phase = true;
  txn.logging = false;
  txn.begin = now;                        // its real begin is not logged: ages count from recovery
  txn.deadline = absl::InfiniteFuture();  // the branch decides
  txn.branches.clear();
  txn.branches.push_back(Branch{one_phase.branch});
  SendPhase2(one_phase.txid, txn, txn.branches[0], now, out);
}

std::vector<LogOnePhase> Engine::LiveOnePhase() const {
  std::vector<LogOnePhase> live;
  for (const auto& [txid, txn] : txns_) {
    if (txn.one_phase && txn.state == TxState::kPreparing) {
      live.push_back(LogOnePhase{txid, txn.branches[0].ref});
    }
  }
  return live;
}

std::vector<LogCommit> Engine::LiveCommits() const {
  std::vector<LogCommit> live;
  for (const auto& [txid, txn] : txns_) {
    if (txn.one_phase || (txn.state != TxState::kCommitting && !txn.logging)) continue;
    LogCommit record{txid, {}};
    for (const Branch& b : txn.branches) {
      if (b.vote == Vote::kYes) record.branches.push_back(b.ref);
    }
    live.push_back(std::move(record));
  }
  return live;
}

std::vector<LogMarkDone> Engine::LiveMarks() const {
  std::vector<LogMarkDone> marks;
  for (const auto& [txid, txn] : txns_) {
    if (txn.state != TxState::kCommitting) continue;
    for (const Branch& b : txn.branches) {
      if (b.heuristic) marks.push_back(LogMarkDone{txid, b.ref.participant, b.mark_note});
    }
  }
  return marks;
}

std::vector<EncodedRecord> Engine::Checkpoint() const {
  std::vector<LogCommit> live = LiveCommits();
  std::vector<LogOnePhase> one_phase = LiveOnePhase();
  std::sort(live.begin(), live.end(),
            [](const LogCommit& a, const LogCommit& b) { return a.txid < b.txid; });
  std::sort(one_phase.begin(), one_phase.end(),
            [](const LogOnePhase& a, const LogOnePhase& b) { return a.txid < b.txid; });
  std::vector<EncodedRecord> records;
  for (const LogCommit& commit : live) records.push_back({kRecordCommit, EncodeCommit(commit)});
  for (const LogMarkDone& mark : LiveMarks()) {
    records.push_back({kRecordMarkDone, EncodeMarkDone(mark)});
  }
  for (const LogOnePhase& p : one_phase) records.push_back({kRecordOnePhase, EncodeOnePhase(p)});
  records.push_back({kRecordExpired, EncodeExpired(retained_.expired())});
  for (const OutcomeChunk& chunk : retained_.Chunks()) {
    records.push_back({kRecordRetained, EncodeRetained(chunk)});
  }
  return records;
}

// `attempts`: failures since the last reset (Branch::backoff_level).
absl::Duration Engine::Backoff(uint32_t attempts) {
  absl::Duration delay = options_.phase2_backoff_initial;
  for (uint32_t i = 1; i < attempts && delay < options_.phase2_backoff_max; ++i) delay *= 2;
  delay = std::min(delay, options_.phase2_backoff_max);
  // Full jitter in [delay/2, delay]: peers that failed together do not
  // retry together.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return delay * jitter(rng_);
}

}  // namespace txcoord::coordinator
