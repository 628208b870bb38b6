// Engine::Stats and the vote counting behind it: what the metrics endpoint
// reports about the protocol (coordinator/coordinator_metrics.h).
#include <algorithm>

#include "coordinator/engine.h"

namespace txcoord::coordinator {

void Engine::CountVote(const absl::StatusOr<Vote>& vote) {
  if (!vote.ok()) {
    // The participant client reports a NO vote as ABORTED (with the
    // branch's reason); any other error means no vote arrived.
    ++(vote.status().code() == absl::StatusCode::kAborted ? stats_.votes_no : stats_.votes_failed);
    return;
  }
  switch (*vote) {
    case Vote::kYes:
      ++stats_.votes_yes;
      break;
    case Vote::kNo:
      ++stats_.votes_no;
      break;
    case Vote::kReadOnly:
      ++stats_.votes_read_only;
      break;
    case Vote::kUnknown:
      ++stats_.votes_failed;
      break;
  }
}

EngineStats Engine::Stats(absl::Time now) const {
  EngineStats stats = stats_;
  stats.open = txns_.size();
  stats.retained_committed = retained_.committed_count();
  stats.retained_bytes = retained_.bytes();
  // Expired reservations go lazily (on Begin and Reserve): not counted.
  for (const auto& [first, r] : reservations_) {
    if (now < r.expires) stats.reserved_outstanding += r.unused;
  }
  absl::Time oldest = absl::InfiniteFuture();
  for (const auto& [txid, txn] : txns_) {
    // A recovered transaction has no begin time: it counts from recovery.
    oldest = std::min(oldest, txn.begin == absl::InfinitePast() ? txn.decided : txn.begin);
    for (const Branch& b : txn.branches)
      stats.heuristic_mixed_branches += b.heuristic_mixed ? 1 : 0;
  }
  stats.oldest_open_age = oldest == absl::InfiniteFuture()
                              ? absl::ZeroDuration()
                              : std::max(absl::ZeroDuration(), now - oldest);
  return stats;
}

}  // namespace txcoord::coordinator
