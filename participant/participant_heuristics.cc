// Participant: heuristic decisions. When the coordinator of an in-doubt
// branch is gone, an operator may force the branch's outcome (txctl
// resolve). The decision is stored in _txcoord_heuristics in the same SQLite
// transaction that applies or drops the branch, and compared with the
// coordinator's outcome whenever that turns up (a phase-2 call, or the
// in-doubt resolver's question): a contradiction is HEURISTIC_MIXED,
// reported loudly and kept.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/heuristic.h"
#include "common/logging.h"
#include "participant/internal_tables.h"
#include "participant/participant_impl.h"
#include "participant/participant_observer.h"

namespace txcoord::participant {
namespace {

const char* Verb(Outcome outcome) {
  return outcome == Outcome::kCommitted ? "committed" : "aborted";
}

const char* Upper(Outcome outcome) { return outcome == Outcome::kCommitted ? "COMMIT" : "ABORT"; }

std::string Timestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

HeuristicDecision ToDecision(const StoredHeuristic& h) {
  return HeuristicDecision{h.txid,   h.coordinator,         h.decision, h.decided_at,
                           h.reason, h.coordinator_outcome, h.mixed};
}

}  // namespace

absl::StatusOr<HeuristicDecision> Participant::Impl::ResolveHeuristically(
    const std::string& txid, Outcome decision, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  if (branch == nullptr) {
    absl::StatusOr<std::optional<StoredHeuristic>> earlier = LookupHeuristic(db(), txid);
    if (!earlier.ok()) return earlier.status();
    if (!earlier->has_value()) {
      return absl::NotFoundError(absl::StrCat(
          "no prepared branch of ", txid,
          " here: never prepared, or already committed or aborted by its coordinator"));
    }
    if ((*earlier)->decision != decision) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch ", txid, " was already heuristically ", Verb((*earlier)->decision),
                       " at ", Timestamp((*earlier)->decided_at), "; that cannot be undone"));
    }
    return ToDecision(**earlier);  // the same decision again: idempotent
  }
  if (!branch->prepared) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch ", txid,
                     " is not prepared, so it is not in doubt: abort the transaction at its "
                     "coordinator, or let the idle timeout roll the branch back"));
  }
  StoredHeuristic stored;
  stored.txid = txid;
  stored.coordinator = branch->coordinator;
  stored.decision = decision;
  stored.decided_at = Now();
  stored.reason = reason;
  if (decision == Outcome::kCommitted) {
    absl::Status status = CommitPreparedLocked(branch, /*record_outcome=*/false, &stored);
    if (!status.ok()) return status;
  } else {
    WriteTransaction tx(db(), &statements_);
    absl::Status status = tx.Begin();
    if (status.ok()) status = DeletePreparedBranch(statements_, txid);
    if (status.ok()) status = InsertHeuristic(db(), stored);
    if (status.ok()) status = tx.Commit();
    if (!status.ok()) return status;
    DropLocked(branch);
    if (options_.observer != nullptr) options_.observer->OnAbort(RollbackReason::kHeuristic);
  }
  TXLOG(WARNING) << "txid=" << txid << " in-doubt branch heuristically " << Verb(decision)
                 << " by an operator (HEURISTIC): " << (reason.empty() ? "no reason given" : reason)
                 << "; if coordinator " << stored.coordinator
                 << " decided otherwise this becomes HEURISTIC_MIXED";
  return ToDecision(stored);
}

absl::StatusOr<std::vector<HeuristicDecision>> Participant::Impl::ListHeuristics(
    bool unsettled_only) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<StoredHeuristic>> stored = LoadHeuristics(db(), unsettled_only);
  if (!stored.ok()) return stored.status();
  std::vector<HeuristicDecision> decisions;
  decisions.reserve(stored->size());
  for (const StoredHeuristic& h : *stored) decisions.push_back(ToDecision(h));
  return decisions;
}

absl::StatusOr<HeuristicDecision> Participant::Impl::RecordCoordinatorOutcome(
    const std::string& txid, Outcome outcome) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::optional<StoredHeuristic>> stored = LookupHeuristic(db(), txid);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return absl::NotFoundError(absl::StrCat("no heuristic decision for ", txid));
  }
  return RecordOutcomeLocked(**stored, outcome);
}

absl::StatusOr<HeuristicDecision> Participant::Impl::RecordOutcomeLocked(
    const StoredHeuristic& stored, Outcome outcome) {
  HeuristicDecision decision = ToDecision(stored);
  // The first outcome learned is the coordinator's decision; it never
  // changes, so later reports of it need no write (and no second alarm).
  if (stored.coordinator_outcome.has_value()) return decision;
  decision.coordinator_outcome = outcome;
  decision.mixed = outcome != stored.decision;
  absl::Status status = UpdateHeuristicOutcome(db(), stored.txid, outcome, decision.mixed);
  if (!status.ok()) return status;
  if (decision.mixed) {
    TXLOG(ERROR) << "txid=" << stored.txid << " " << kHeuristicMixed << ": participant "
                 << options_.name << " was heuristically " << Verb(stored.decision)
                 << " by an operator at " << Timestamp(stored.decided_at) << " (" << stored.reason
                 << ") but coordinator " << stored.coordinator << " decided " << Upper(outcome)
                 << ": the transaction's branches disagree; repair the data by "
                 << "hand (txctl heuristics lists it)";
  } else {
    TXLOG(INFO) << "txid=" << stored.txid << " heuristic decision confirmed: coordinator "
                << stored.coordinator << " also decided " << Upper(outcome);
  }
  return decision;
}

absl::Status Participant::Impl::CheckHeuristicLocked(const std::string& txid, Outcome outcome) {
  absl::StatusOr<std::optional<StoredHeuristic>> stored = LookupHeuristic(db(), txid);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return absl::OkStatus();
  absl::StatusOr<HeuristicDecision> decision = RecordOutcomeLocked(**stored, outcome);
  if (!decision.ok()) return decision.status();
  // The first answer may have been a different call; compare with this one.
  if ((*stored)->decision == outcome) return absl::OkStatus();
  return HeuristicMixedError(absl::StrCat(
      "branch ", txid, " at participant ", options_.name, " was heuristically ",
      Verb((*stored)->decision), " by an operator at ", Timestamp((*stored)->decided_at), " (",
      (*stored)->reason, "); the coordinator's ", Upper(outcome), " cannot be applied. ",
      outcome == Outcome::kCommitted
          ? absl::StrCat("Repair the data by hand, then: txctl mark-done ", txid, " ",
                         options_.name)
          : std::string("Repair the data by hand (undo the branch's changes)")));
}

}  // namespace txcoord::participant
