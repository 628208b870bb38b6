#include "participant/in_doubt_resolver.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "common/log.h"

namespace txcoord::participant {

InDoubtResolver::InDoubtResolver(Participant* participant, OutcomeQuery query,
                                 const ResolverOptions& options)
    : participant_(participant),
      query_(std::move(query)),
      options_(options),
      started_(absl::Now()),
      thread_([this] { Run(); }) {}

InDoubtResolver::~InDoubtResolver() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void InDoubtResolver::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    ResolveOnce(absl::Now());
    mu_.Lock();
    // A periodic scan, woken early only to stop.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.poll_interval);
  }
}

void InDoubtResolver::ResolveOnce(absl::Time now) {
  absl::flat_hash_set<std::string> seen;
  for (const PreparedBranch& branch : participant_->ListPrepared()) {
    seen.insert(branch.txid);
    // Recovered branches (prepared before this process started) are asked
    // at once; fresh ones get time for the coordinator's own phase 2.
    if (branch.prepared_at >= started_ && now - branch.prepared_at < options_.min_age) continue;
    auto [it, inserted] = backoff_.try_emplace(branch.txid, Backoff{now, options_.backoff_initial});
    if (it->second.next > now) continue;
    absl::StatusOr<RemoteOutcome> outcome = query_(branch.txid);
    absl::Status applied;
    if (outcome.ok() && *outcome == RemoteOutcome::kCommitted) {
      applied = participant_->Commit(branch.txid);
      TXLOG(INFO) << "txid=" << branch.txid << " in-doubt branch resolved: COMMITTED (asked the coordinator)";
    } else if (outcome.ok() && *outcome == RemoteOutcome::kAborted) {
      applied = participant_->Abort(branch.txid);
      TXLOG(INFO) << "txid=" << branch.txid << " in-doubt branch resolved: ABORTED (asked the coordinator)";
    } else {
      if (!outcome.ok()) {
        const bool foreign = outcome.status().code() == absl::StatusCode::kFailedPrecondition;
        TXLOG(WARNING) << "txid=" << branch.txid << " in-doubt branch: cannot learn its outcome: "
                       << outcome.status()
                       << (foreign ? " (resolve by hand with txctl if its coordinator is gone)" : "");
      }
      it->second.next = now + it->second.delay;
      it->second.delay = std::min(it->second.delay * 2, options_.backoff_max);
      continue;
    }
    if (!applied.ok()) {
      TXLOG(ERROR) << "txid=" << branch.txid << " applying the coordinator's outcome failed: " << applied;
      it->second.next = now + it->second.delay;
      continue;
    }
    backoff_.erase(it);
  }
  CheckHeuristics(now, &seen);
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    if (!seen.contains(it->first)) {
      backoff_.erase(it++);
    } else {
      ++it;
    }
  }
}

void InDoubtResolver::CheckHeuristics(absl::Time now, absl::flat_hash_set<std::string>* seen) {
  absl::StatusOr<std::vector<HeuristicDecision>> unsettled = participant_->ListHeuristics(true);
  if (!unsettled.ok()) {
    TXLOG(WARNING) << "listing heuristic decisions: " << unsettled.status();
    return;
  }
  for (const HeuristicDecision& decision : *unsettled) {
    seen->insert(decision.txid);
    auto [it, inserted] =
        backoff_.try_emplace(decision.txid, Backoff{now, options_.backoff_initial});
    if (it->second.next > now) continue;
    absl::StatusOr<RemoteOutcome> outcome = query_(decision.txid);
    if (outcome.ok() && *outcome != RemoteOutcome::kPending) {
      // Logs HEURISTIC_MIXED at ERROR itself if the two disagree.
      absl::StatusOr<HeuristicDecision> recorded = participant_->RecordCoordinatorOutcome(
          decision.txid,
          *outcome == RemoteOutcome::kCommitted ? Outcome::kCommitted : Outcome::kAborted);
      if (recorded.ok()) {
        backoff_.erase(it);
        continue;
      }
      TXLOG(WARNING) << "txid=" << decision.txid
                     << " recording the coordinator's outcome: " << recorded.status();
    } else if (!outcome.ok() && inserted) {
      // Usual when an operator had to decide: the coordinator is gone. Said
      // once, not at every retry.
      TXLOG(INFO) << "txid=" << decision.txid
                  << " heuristic decision not confirmed by the coordinator yet: "
                  << outcome.status() << " (will keep asking)";
    }
    it->second.next = now + it->second.delay;
    it->second.delay = std::min(it->second.delay * 2, options_.backoff_max);
  }
}

}  // namespace txcoord::participant
