#include "participant/in_doubt_resolver.h"

#include <algorithm>
#include <cassert>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/logging.h"

namespace txcoord::participant {

InDoubtResolver::InDoubtResolver(Participant* participant, Scheduler* scheduler, OutcomeQuery query,
                                 const ResolverOptions& options)
    : participant_(participant), query_(std::move(query)), options_(options), scope_(scheduler) {}

void InDoubtResolver::Start() {
  started_ = scope_.Now();
  scope_.Schedule(started_, [this] { Scan(); });
}

void InDoubtResolver::Scan() {
  const absl::Time now = scope_.Now();
  absl::flat_hash_set<std::string> seen;
  for (const PreparedBranch& branch : participant_->ListPrepared()) {
    seen.insert(branch.txid);
    // Recovered branches (prepared before the resolver started) and those
    // whose vote the coordinator refused are asked at once; fresh ones get
    // time for the coordinator's own phase 2.
    if (!branch.vote_refused && branch.prepared_at >= started_ &&
        now - branch.prepared_at < options_.min_age) {
      continue;
    }
    // A signed vote whose Commit has not come yet: first send the vote, so
    // that the coordinator holds the transaction (and its vote) open for
    // that Commit rather than presume it aborted (for a reserved txid not
    // begun yet, the question would use it up); ask once it was taken or
    // refused. Sent again after a backoff if it did not get through; never
    // asked about while that Enlist is on its way.
    if (branch.vote_sending) continue;
    if (branch.vote_unsent) {
      Entry& entry = EntryFor(branch.txid, Kind::kPrepared, now);
      if (!Due(entry, now)) continue;
      if (participant_->SendSignedVote(branch.txid)) {
        BackOff(entry, now);
        continue;
      }
    }
    MaybeAsk(branch.txid, Kind::kPrepared, now);
  }
  absl::StatusOr<std::vector<HeuristicDecision>> unsettled = participant_->ListHeuristics(true);
  if (unsettled.ok()) {
    for (const HeuristicDecision& decision : *unsettled) {
      seen.insert(decision.txid);
      MaybeAsk(decision.txid, Kind::kHeuristic, now);
    }
  } else {
    TXLOG(WARNING) << "listing heuristic decisions: " << unsettled.status();
  }
  if (options_.idle_ask_after != absl::InfiniteDuration()) {
    for (const std::string& txid : participant_->ListIdleEnlisted(now - options_.idle_ask_after)) {
      seen.insert(txid);
      if (idle_asking_ < options_.max_idle_asking) MaybeAsk(txid, Kind::kIdle, now);
    }
  }
  // Settled by the coordinator's own phase 2 (or an operator) meanwhile.
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.asking && !seen.contains(it->first)) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  scope_.After(options_.poll_interval, [this] { Scan(); });
}

InDoubtResolver::Entry& InDoubtResolver::EntryFor(const std::string& txid, Kind kind,
                                                  absl::Time now) {
  const Entry fresh{now, kind == Kind::kIdle ? options_.idle_ask_after : options_.backoff_initial,
                    /*asking=*/false, kind};
  auto [it, inserted] = entries_.try_emplace(txid, fresh);
  Entry& entry = it->second;
  if (!inserted && !entry.asking && entry.kind != kind) entry = fresh;
  return entry;
}

void InDoubtResolver::MaybeAsk(const std::string& txid, Kind kind, absl::Time now) {
  Entry& entry = EntryFor(txid, kind, now);
  if (!Due(entry, now)) return;
  entry.asking = true;
  if (kind == Kind::kIdle) ++idle_asking_;
  // `done` may run inside the call: it only schedules OnAnswer.
  query_(txid,
         scope_.Bind<absl::StatusOr<RemoteOutcome>>(
             [this, txid](absl::StatusOr<RemoteOutcome> outcome) { OnAnswer(txid, outcome); }));
}

void InDoubtResolver::OnAnswer(const std::string& txid,
                               const absl::StatusOr<RemoteOutcome>& outcome) {
  auto it = entries_.find(txid);
  // Scan keeps the entry of a txid being asked about.
  assert(it != entries_.end() && it->second.asking);
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  entry.asking = false;
  if (entry.kind == Kind::kIdle) --idle_asking_;
  const absl::Time now = scope_.Now();
  bool settled = false;
  switch (entry.kind) {
    case Kind::kPrepared:
      settled = ApplyToBranch(txid, outcome, entry, now);
      break;
    case Kind::kHeuristic:
      settled = ApplyToHeuristic(txid, outcome, entry, now);
      break;
    case Kind::kIdle:
      settled = ApplyToIdle(txid, outcome, entry, now);
      break;
  }
  if (settled) entries_.erase(it);
}

bool InDoubtResolver::ApplyToBranch(const std::string& txid,
                                    const absl::StatusOr<RemoteOutcome>& outcome, Entry& entry,
                                    absl::Time now) {
  absl::Status applied;
  if (outcome.ok() && *outcome == RemoteOutcome::kCommitted) {
    applied = participant_->Commit(txid);
    TXLOG(INFO) << "txid=" << txid
                << " in-doubt branch resolved: COMMITTED (asked the coordinator)";
  } else if (outcome.ok() && *outcome == RemoteOutcome::kAborted) {
    applied = participant_->Abort(txid);
    TXLOG(INFO) << "txid=" << txid << " in-doubt branch resolved: ABORTED (asked the coordinator)";
  } else {
    if (!outcome.ok()) {
      const bool foreign = outcome.status().code() == absl::StatusCode::kFailedPrecondition;
      TXLOG(WARNING) << "txid=" << txid
                     << " in-doubt branch: cannot learn its outcome: " << outcome.status()
                     << (foreign ? " (resolve by hand with txctl if its coordinator is gone)" : "");
    }
    BackOff(entry, now);
    return false;
  }
  if (!applied.ok()) {
    // Asked again after the same wait: the outcome is known, applying it is
    // what failed.
    TXLOG(ERROR) << "txid=" << txid << " applying the coordinator's outcome failed: " << applied;
    entry.next = now + entry.delay;
    return false;
  }
  return true;
}

bool InDoubtResolver::ApplyToHeuristic(const std::string& txid,
                                       const absl::StatusOr<RemoteOutcome>& outcome, Entry& entry,
                                       absl::Time now) {
  if (outcome.ok() && *outcome != RemoteOutcome::kPending) {
    // Logs HEURISTIC_MIXED at ERROR itself if the two disagree.
    absl::StatusOr<HeuristicDecision> recorded = participant_->RecordCoordinatorOutcome(
        txid, *outcome == RemoteOutcome::kCommitted ? Outcome::kCommitted : Outcome::kAborted);
    if (recorded.ok()) return true;
    TXLOG(WARNING) << "txid=" << txid
                   << " recording the coordinator's outcome: " << recorded.status();
  } else if (!outcome.ok() && !entry.told) {
    // Usual when an operator had to decide: the coordinator is gone. Said
    // once, not at every retry.
    entry.told = true;
    TXLOG(INFO) << "txid=" << txid
                << " heuristic decision not confirmed by the coordinator yet: " << outcome.status()
                << " (will keep asking)";
  }
  BackOff(entry, now);
  return false;
}

bool InDoubtResolver::ApplyToIdle(const std::string& txid,
                                  const absl::StatusOr<RemoteOutcome>& outcome, Entry& entry,
                                  absl::Time now) {
  // PENDING (still open: the client is slow), an error, or COMMITTED
  // (which an unprepared branch cannot be part of): ask again later; the
  // idle timeout still bounds how long the branch lives.
  if (!outcome.ok() || *outcome != RemoteOutcome::kAborted) {
    BackOff(entry, now);
    return false;
  }
  // The transaction is over: whatever became of the branch since it was
  // listed (even prepared since), it can only abort.
  if (absl::Status aborted = participant_->Abort(txid, RollbackReason::kAskedAborted);
      !aborted.ok()) {
    TXLOG(WARNING) << "txid=" << txid
                   << " rolling back an idle branch whose transaction ABORTED: " << aborted;
    BackOff(entry, now);
    return false;
  }
  TXLOG(INFO) << "txid=" << txid
              << " idle branch rolled back: its transaction ABORTED (asked the coordinator; its "
                 "Abort did not arrive)";
  return true;
}

void InDoubtResolver::BackOff(Entry& entry, absl::Time now) {
  entry.next = now + entry.delay;
  entry.delay = std::min(entry.delay * 2, entry.kind == Kind::kIdle ? options_.idle_backoff_max
                                                                    : options_.backoff_max);
}

}  // namespace txcoord::participant
