// The outbox table in the service's database (_txcoord_outbox): one row per
// committed message, in commit order (seq), with its delivery state. Rows
// are inserted by the transaction that commits their branch, so a message
// exists exactly when its transaction committed. Internal SQL on the
// caller's connection, under its lock; the caller owns the transaction
// where one is needed.
#ifndef TXCOORD_PARTICIPANT_OUTBOX_STORE_H_
#define TXCOORD_PARTICIPANT_OUTBOX_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "participant/outbox.h"

namespace txcoord::participant {

enum class OutboxState { kPending = 0, kDelivered = 1, kDead = 2 };

// One message as the outbox holds it.
struct OutboxRow {
  int64_t seq = 0;  // commit order at this database
  std::string id;
  std::string txid;  // empty for a local transaction
  OutboxMessage message;
  OutboxState state = OutboxState::kPending;
  int attempts = 0;
  absl::Time committed_at;
  absl::Time next_attempt;  // pending: not before
  absl::Time delivered_at;  // delivered only
  std::string last_error;
  int64_t payload_bytes = 0;  // set even where `message.payload` is left out
};

// What one publish attempt of a pending row came to.
struct OutboxAttempt {
  int64_t seq = 0;
  bool delivered = false;
  // Not delivered: why, when to try next, and whether to give up.
  std::string error;
  absl::Time next_attempt;
  bool dead = false;
  // False for a failure that was not the message's (e.g. no stream for its
  // subject yet): noted, but no attempt is used up.
  bool counts = true;
};

struct OutboxCounts {
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t dead = 0;
  std::optional<absl::Time> oldest_pending;  // committed_at of the first pending
};

absl::Status CreateOutboxTable(sqlite3* db);

// Inserts `messages` (ids in `ids`, same length) as pending, committed at
// `now`, after every row already there.
absl::Status InsertOutboxRows(sqlite3* db, const std::string& txid,
                              const std::vector<std::string>& ids,
                              const std::vector<OutboxMessage>& messages, absl::Time now);

// Pending rows in commit order, at most `limit`, payloads included.
absl::StatusOr<std::vector<OutboxRow>> LoadPendingOutbox(sqlite3* db, size_t limit);

// Records attempts (pending rows only; others are left as they are, e.g. a
// row an operator purged meanwhile). Runs in its own transaction.
absl::Status RecordOutboxAttempts(sqlite3* db, const std::vector<OutboxAttempt>& attempts,
                                  absl::Time now);

// Counting delivered rows reads all of them (up to the retention's worth):
// metrics, scraped often, leave it out.
absl::StatusOr<OutboxCounts> CountOutbox(sqlite3* db, bool count_delivered);

// Rows in `state` (nullopt: pending and dead), oldest first, at most
// `limit`, payloads left out.
absl::StatusOr<std::vector<OutboxRow>> ListOutbox(sqlite3* db, std::optional<OutboxState> state,
                                                  size_t limit);
absl::StatusOr<std::optional<OutboxRow>> GetOutboxRow(sqlite3* db, const std::string& id);

// Makes the rows `ids` (empty: every dead row) pending again, due now,
// attempts reset; delivered rows are left alone. Returns how many.
absl::StatusOr<int64_t> RetryOutboxRows(sqlite3* db, const std::vector<std::string>& ids,
                                        absl::Time now);
// Deletes rows in `state` (delivered or dead only), just `ids` if given.
absl::StatusOr<int64_t> PurgeOutboxRows(sqlite3* db, OutboxState state,
                                        const std::vector<std::string>& ids);
// Deletes up to `limit` rows delivered before `cutoff`; returns how many.
absl::StatusOr<int64_t> DeleteDeliveredBefore(sqlite3* db, absl::Time cutoff, size_t limit);

const char* OutboxStateName(OutboxState state);  // "pending", "delivered", "dead"

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_OUTBOX_STORE_H_
