// The outbox relay's decisions, with no I/O: which pending messages to
// publish now, and what a failed attempt means (when to try again, when to
// give up). The driver (outbox_relay.h) loads rows, publishes, and records
// what this decides, so every rule here is tested without a broker.
//
// Order: messages with the same key are published one at a time in commit
// order, so per key the broker holds them in commit order; a failing key
// holds back only its own later messages. An empty key orders nothing.
#ifndef TXCOORD_AGENT_RELAY_SCHEDULE_H_
#define TXCOORD_AGENT_RELAY_SCHEDULE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "participant/outbox_store.h"

namespace txcoord::participant {

struct RelayPolicy {
  // Attempts before a message is dead-lettered (kept as dead, never
  // dropped). At least 1.
  int max_attempts = 20;
  // The wait after the first failure; each later one doubles, up to
  // max_backoff.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
};

// Indexes into `pending` (commit order, as LoadPendingOutbox returns it) of
// the messages to publish at `now`: for each key its first pending message
// if due, every due message with an empty key; at most `max` of them, in
// commit order.
std::vector<size_t> PickDue(const std::vector<OutboxRow>& pending, absl::Time now, size_t max);

// The wait after the `attempts`-th failed attempt (attempts >= 1).
absl::Duration BackoffAfter(int attempts, const RelayPolicy& policy);

// What to record after an attempt to publish `row` failed with `error`:
// retried after a backoff, or dead once it has had policy.max_attempts.
OutboxAttempt FailedAttempt(const OutboxRow& row, std::string error, absl::Time now,
                            const RelayPolicy& policy);

// The earliest time a message of `pending` that PickDue would skip as not
// due becomes due; nullopt if none waits for a backoff.
std::optional<absl::Time> NextDue(const std::vector<OutboxRow>& pending, absl::Time now);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_RELAY_SCHEDULE_H_
