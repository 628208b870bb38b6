// The consumer's tables in the service's SQLite database, and the one
// transaction that applies a batch of messages: effects, inbox rows and the
// new position commit together or not at all. No NATS here, so that the
// exactly-once rules are tested on a plain file. Internal to
// txcoord_consumer.
//
//   _txcoord_inbox(msg_id PRIMARY KEY, stream_seq, applied_at_ms)
//   _txcoord_consumer_position(durable PRIMARY KEY, stream, stream_seq)
//   _txcoord_consumer_dead(msg_id PRIMARY KEY, stream_seq, topic, payload,
//                          error, deliveries, at_ms)
#ifndef TXCOORD_CLIENT_CONSUMER_STORE_H_
#define TXCOORD_CLIENT_CONSUMER_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/consumer.h"
#include "common/sqlite_db.h"

namespace txcoord::consumer_internal {

// What to tell the server about one message of a batch.
enum class Disposition {
  kAck,   // applied, or known already: done with it
  kTerm,  // dead-lettered: never deliver again
  kNak,   // not applied: deliver again, in order, before anything newer
};

struct BatchResult {
  std::vector<Disposition> dispositions;  // one per message given
  int64_t applied = 0;
  int64_t duplicates = 0;
  int64_t already_applied = 0;
  int64_t dead_lettered = 0;
  // The apply error that stopped the batch (its message and the rest are
  // kNak); OK if none did.
  absl::Status apply_error;
  // Deliveries of the message that failed (0 if none).
  int failed_deliveries = 0;
  uint64_t position = 0;  // committed position after the batch
};

// One connection to the service's database. Not thread-safe: the
// consumer's thread owns it (Create may run on another before that).
class ConsumerStore final {
 public:
  // Opens or creates `path`, creates the tables if missing.
  // FAILED_PRECONDITION if the file cannot be opened or written.
  static absl::StatusOr<std::unique_ptr<ConsumerStore>> Open(const std::string& path,
                                                             bool durable_sync);
  ConsumerStore(const ConsumerStore&) = delete;
  ConsumerStore& operator=(const ConsumerStore&) = delete;

  // The last stream sequence applied for `durable`; 0 if none yet.
  absl::StatusOr<uint64_t> Position(const std::string& durable);

  // Applies `messages` (in stream order) in one transaction, each in a
  // savepoint: a message at or below the position, or whose id is in the
  // inbox, is only acked; otherwise `apply` runs and an inbox row is added.
  // If `apply` fails for a message that has had `max_deliveries`
  // deliveries it is dead-lettered (and put in the inbox, so a republished
  // copy is not applied out of order); otherwise the batch stops there.
  // The position advances to the last message acked or terminated. An
  // error means nothing was committed (every message kNak).
  absl::StatusOr<BatchResult> ApplyBatch(const std::string& durable, const std::string& stream,
                                         const std::vector<const InboundMessage*>& messages,
                                         const ApplyFunction& apply, int max_deliveries,
                                         absl::Time now);

  // Deletes inbox rows applied before `cutoff`; returns how many.
  absl::StatusOr<int64_t> PruneInbox(absl::Time cutoff);

  sqlite3* db() const { return db_.get(); }

 private:
  explicit ConsumerStore(SqliteDb db) : db_(std::move(db)) {}

  const SqliteDb db_;
};

}  // namespace txcoord::consumer_internal

#endif  // TXCOORD_CLIENT_CONSUMER_STORE_H_
