// Engine: what operators see of transactions and may do to them (txctl
// through the CoordinatorAdmin service, and GetTransaction). Same rules as
// the rest of the engine: no I/O, every effect is an action. The protocol
// paths live in engine.cc.
#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/txid.h"
#include "coordinator/engine.h"

namespace txcoord::coordinator {
namespace {

// Transactions list in the order they began: epoch, then sequence. The txid
// breaks ties (and orders anything unparsable, which owned txids never are).
using SortKey = std::tuple<uint64_t, uint64_t, std::string>;

SortKey KeyOf(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return {0, 0, txid};
  return {parsed->epoch, parsed->sequence, txid};
}

bool Matches(const TransactionView& view, const ListFilter& filter, absl::Time now) {
  if (!filter.states.empty() &&
      std::find(filter.states.begin(), filter.states.end(), view.state) == filter.states.end()) {
    return false;
  }
  if (filter.min_age > absl::ZeroDuration()) {
    const absl::Time since = view.begin != absl::InfinitePast() ? view.begin : view.decided;
    if (since == absl::InfinitePast() || now - since < filter.min_age) return false;
  }
  if (!filter.participant.empty()) {
    const bool has =
        std::any_of(view.branches.begin(), view.branches.end(),
                    [&](const BranchView& b) { return b.ref.participant == filter.participant; });
    if (!has) return false;
  }
  return true;
}

}  // namespace

TransactionView Engine::View(const std::string& txid, const Txn& txn) const {
  TransactionView view{txid, txn.state, {}, txn.begin, txn.deadline, txn.reason, txn.decided};
  if (txn.state == TxState::kPreparing && txn.one_phase)
    view.reason = "one-phase commit in progress";
  for (const Branch& b : txn.branches) {
    view.branches.push_back(BranchView{b.ref, b.vote, b.acknowledged, b.attempts, b.last_error,
                                       b.last_attempt, b.heuristic, b.heuristic_mixed, b.awaited});
  }
  return view;
}

absl::Status Engine::UnknownToOperators(const std::string& txid) {
  return absl::NotFoundError(absl::StrCat(
      "transaction ", txid, " is unknown (never begun, aborted and forgotten, or long finished)"));
}

absl::StatusOr<TransactionView> Engine::Describe(const std::string& txid, absl::Time now) const {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it != txns_.end()) return View(txid, it->second);
  if (finished_.contains(txid)) return FinishedView(txid);
  if (ReservedUnused(txid, now)) {
    TransactionView view;
    view.txid = txid;
    view.state = TxState::kActive;
    view.reason = "reserved, not begun yet: it begins at its first Enlist or Commit";
    return view;
  }
  absl::StatusOr<bool> committed = ForgottenOutcome(txid);
  if (!committed.ok()) return committed.status();
  // Only the outcome is retained: no branches, no times.
  TransactionView view;
  view.txid = txid;
  view.state = *committed ? TxState::kCommitted : TxState::kAborted;
  view.reason = *committed ? "" : kPresumedAbort;
  return view;
}

// Precondition: `txid` is in finished_.
TransactionView Engine::FinishedView(const std::string& txid) const {
  const Finished& done = finished_.at(txid);
  TransactionView view;
  view.txid = txid;
  view.state = done.state;
  view.reason = done.reason;
  view.begin = done.begin;
  view.decided = done.decided;
  for (const std::string& p : done.committed_participants) {
    BranchView b;
    b.ref.participant = p;
    b.vote = Vote::kYes;
    b.acknowledged = true;
    b.heuristic = std::find(done.heuristic_participants.begin(), done.heuristic_participants.end(),
                            p) != done.heuristic_participants.end();
    view.branches.push_back(std::move(b));
  }
  return view;
}

absl::StatusOr<ListPage> Engine::List(const ListFilter& filter, absl::Time now) const {
  std::optional<SortKey> after;
  if (!filter.page_token.empty()) {
    if (!ParseTxid(filter.page_token).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("page_token \"", filter.page_token,
                                                     "\" is not one this coordinator handed out"));
    }
    after = KeyOf(filter.page_token);
  }
  // An operator's query over at most max_open_transactions plus the
  // finished cache: a full scan and sort per page is fine at that rate.
  std::vector<std::pair<SortKey, const std::string*>> keys;
  keys.reserve(txns_.size() + (filter.include_finished ? finished_.size() : 0));
  for (const auto& [txid, txn] : txns_) keys.emplace_back(KeyOf(txid), &txid);
  if (filter.include_finished) {
    for (const auto& [txid, done] : finished_) keys.emplace_back(KeyOf(txid), &txid);
  }
  std::sort(keys.begin(), keys.end());

  ListPage page;
  const size_t page_size = std::max<size_t>(filter.page_size, 1);
  for (const auto& [key, txid] : keys) {
    if (after.has_value() && key <= *after) continue;
    auto open = txns_.find(*txid);
    TransactionView view = open != txns_.end() ? View(*txid, open->second) : FinishedView(*txid);
    if (!Matches(view, filter, now)) continue;
    if (page.transactions.size() == page_size) {
      // One more match exists: the page is full and another follows.
      page.next_page_token = page.transactions.back().txid;
      break;
    }
    page.transactions.push_back(std::move(view));
  }
  return page;
}

absl::StatusOr<size_t> Engine::RetryPhase2(const std::string& txid, absl::Time now, Actions* out) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    if (done != finished_.end()) {
      return absl::FailedPreconditionError(absl::StrCat("transaction ", txid, " is already ",
                                                        TxStateName(done->second.state),
                                                        ": phase 2 has nothing left to do"));
    }
    return UnknownToOperators(txid);
  }
  Txn& txn = it->second;
  const bool one_phase = txn.one_phase && txn.state == TxState::kPreparing && !txn.logging;
  if (txn.state != TxState::kCommitting && !one_phase) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid, " is ", TxStateName(txn.state),
                     txn.logging ? (txn.one_phase ? " (its ONE_PHASE record is being logged)"
                                                  : " (its COMMIT is being logged)")
                                 : "",
                     ": phase 2 has not started; it commits or aborts on its own, or use abort"));
  }
  size_t resent = 0;
  for (Branch& b : txn.branches) {
    if (b.acknowledged || (!one_phase && b.vote != Vote::kYes)) continue;
    // Retire the pending retry timer; the failure of this send, if it
    // fails, arms the next one from the first backoff step.
    b.backoff_level = 0;
    ++b.retry_generation;
    SendPhase2(txid, txn, b, now, out);
    ++resent;
  }
  return resent;
}

absl::Status Engine::ForceAbort(const std::string& txid, const std::string& reason, absl::Time now,
                                Actions* out) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    if (done == finished_.end()) {
      DropExpiredReservations(now);
      if (UseUpReserved(txid)) return absl::OkStatus();  // never to begin: as good as aborted
      return UnknownToOperators(txid);
    }
    if (done->second.state == TxState::kCommitted) {
      return absl::FailedPreconditionError(
          absl::StrCat("transaction ", txid, " is COMMITTED and can no longer abort"));
    }
    return absl::OkStatus();  // already aborted
  }
  Txn& txn = it->second;
  if (txn.one_phase) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid,
                     " is being committed by its only branch, which decides; "
                     "it can no longer abort (use retry to ask the branch again)"));
  }
  if (txn.state == TxState::kCommitting || txn.state == TxState::kCommitted || txn.logging) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid, " is decided COMMIT (its COMMIT record is ",
                     txn.logging ? "being written to" : "in",
                     " the log) and can no longer abort; "
                     "use retry to push phase 2, or mark-done for a branch repaired by hand"));
  }
  DoAbort(txid, txn, reason, out);
  return absl::OkStatus();
}

absl::Status Engine::MarkBranchDone(const std::string& txid, const std::string& participant,
                                    const std::string& note, absl::Time now, Actions* out) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    if (done == finished_.end()) {
      return UnknownToOperators(txid);
    }
    const auto& who = done->second.committed_participants;
    if (done->second.state == TxState::kCommitted &&
        std::find(who.begin(), who.end(), participant) != who.end()) {
      return absl::OkStatus();  // every branch is already settled
    }
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid, " is ", TxStateName(done->second.state),
                     " without a branch \"", participant, "\" to settle"));
  }
  Txn& txn = it->second;
  if (txn.state != TxState::kCommitting) {
    return absl::FailedPreconditionError(absl::StrCat(
        "transaction ", txid, " is ", TxStateName(txn.state),
        ": only a COMMITTING transaction has branches to mark done (abort an undecided one)"));
  }
  Branch* b = FindBranch(txn, participant);
  if (b == nullptr || b->vote != Vote::kYes) {
    return absl::NotFoundError(absl::StrCat("transaction ", txid, " has no branch \"", participant,
                                            "\" waiting for phase 2"));
  }
  if (b->acknowledged) return absl::OkStatus();
  // Marked only once durable: a mark a restart could forget would send
  // phase 2 to a branch the operator already repaired.
  out->push_back(LogMarkDone{txid, participant, note});
  return absl::OkStatus();
}

void Engine::OnMarkDoneLogged(const LogMarkDone& mark, const absl::Status& status, absl::Time now,
                              Actions* out) {
  if (!status.ok()) return;
  auto it = txns_.find(mark.txid);
  if (it == txns_.end()) return;
  Txn& txn = it->second;
  // Invariant: MarkBranchDone logs a mark only for a YES branch of a
  // COMMITTING transaction, which stays so until it ends.
  Branch* b = FindBranch(txn, mark.participant);
  TXCOORD_CHECK(txn.state == TxState::kCommitting && b != nullptr && b->vote == Vote::kYes)
      << "txid=" << mark.txid << " mark on " << mark.participant << " logged while "
      << TxStateName(txn.state);
  if (b->acknowledged) return;  // acknowledged (or marked) meanwhile
  b->acknowledged = true;
  b->heuristic = true;
  b->mark_note = mark.note;
  ++b->retry_generation;  // its pending retry timer does nothing now
  MaybeEnd(mark.txid, txn, now, out);
}

}  // namespace txcoord::coordinator
