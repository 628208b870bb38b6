// The relay's pure decisions (see relay_schedule.h).
#include "agent/relay_schedule.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace txcoord::participant {

std::vector<size_t> PickDue(const std::vector<OutboxRow>& pending, absl::Time now, size_t max) {
  std::vector<size_t> picked;
  // Keys whose first pending message was seen: later ones wait for it,
  // whether it is due or still backing off.
  absl::flat_hash_set<absl::string_view> seen_keys;
  for (size_t i = 0; i < pending.size() && picked.size() < max; ++i) {
    const OutboxRow& row = pending[i];
    assert(row.state == OutboxState::kPending);
    assert(i == 0 || pending[i - 1].seq < row.seq);
    const std::string& key = row.message.key;
    if (!key.empty() && !seen_keys.insert(key).second) continue;
    if (row.next_attempt <= now) picked.push_back(i);
  }
  return picked;
}

absl::Duration BackoffAfter(int attempts, const RelayPolicy& policy) {
  assert(attempts >= 1);
  absl::Duration wait = policy.initial_backoff;
  for (int i = 1; i < attempts && wait < policy.max_backoff; ++i) wait *= 2;
  return std::min(wait, policy.max_backoff);
}

OutboxAttempt FailedAttempt(const OutboxRow& row, std::string error, absl::Time now,
                            const RelayPolicy& policy) {
  OutboxAttempt attempt;
  attempt.seq = row.seq;
  attempt.delivered = false;
  attempt.error = std::move(error);
  const int attempts = row.attempts + 1;
  attempt.dead = attempts >= std::max(policy.max_attempts, 1);
  attempt.next_attempt = now + BackoffAfter(attempts, policy);
  return attempt;
}

std::optional<absl::Time> NextDue(const std::vector<OutboxRow>& pending, absl::Time now) {
  std::optional<absl::Time> next;
  for (const OutboxRow& row : pending) {
    if (row.next_attempt > now && (!next.has_value() || row.next_attempt < *next)) {
      next = row.next_attempt;
    }
  }
  return next;
}

}  // namespace txcoord::participant
