// Receiving side of txcoord's transactional messages: a durable JetStream
// pull consumer that applies each message to the service's own SQLite
// database exactly once, in stream order (so in commit order per key).
//
// Each batch of messages is applied in one SQLite transaction together with
// an inbox row per message id (_txcoord_inbox) and the last stream sequence
// applied (_txcoord_consumer_position); only then are the messages acked.
// A message seen again (redelivered after a crash, or republished by the
// relay) is recognised by the inbox, or by the position, and only acked.
// Inbox rows are kept for `inbox_retention`; a duplicate arriving later
// than that is applied again. Stream order survives crashes and lost
// deliveries: whenever the server may hold unacked messages it would hand
// out behind later ones (at start, after a reconnect, on a gap in the
// delivery count), the durable consumer is recreated to start right after
// the position. Run one Consumer per durable name at a time.
//
//   txcoord::ConsumerOptions options;
//   options.url = "nats://127.0.0.1:4222";
//   options.stream = "BANK";
//   options.durable = "ledger";
//   options.db_path = "ledger.db";
//   auto consumer = txcoord::Consumer::Create(
//       options, [](sqlite3* db, const txcoord::InboundMessage& m) -> absl::Status {
//         return Exec(db, "INSERT INTO ledger ...", m.payload);  // no COMMIT
//       });
//   if (!consumer.ok()) ...
//   (*consumer)->Start();
//   ...
//   (*consumer)->Stop();
#ifndef TXCOORD_CLIENT_CONSUMER_H_
#define TXCOORD_CLIENT_CONSUMER_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txcoord {

// One message as published by txagent's relay.
struct InboundMessage {
  std::string id;     // Nats-Msg-Id: unique and stable across republishing
  std::string topic;  // the NATS subject
  std::string key;    // Txcoord-Key, the ordering key; empty if none
  std::string txid;   // Txcoord-Txid; empty for a local transaction
  // The publisher's own headers, in order (the three above left out).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
  uint64_t stream_seq = 0;  // position in the stream
  int deliveries = 0;       // 1 the first time the server hands it out
};

// Applies one message inside the consumer's open SQLite transaction (and a
// savepoint of its own): run statements on `db`, never BEGIN, COMMIT or
// ROLLBACK. An error rolls back this message's statements and makes the
// server deliver it (and every later one) again; after max_deliveries it is
// dead-lettered instead. Called on the consumer's thread only.
using ApplyFunction = std::function<absl::Status(sqlite3* db, const InboundMessage& message)>;

struct ConsumerOptions {
  std::string url;             // "nats://host:port" (several: comma-separated)
  std::string stream;          // the JetStream stream; must exist
  std::string durable;         // durable consumer name (no '.'); one Consumer per name
  std::string filter_subject;  // empty: every subject of the stream
  std::string db_path;         // the service's SQLite file; created if missing
  // Sets journal_mode=WAL and synchronous=FULL, so that an acked message's
  // effects survive a power loss. False leaves the database's settings.
  bool durable_sync = true;
  int batch_size = 256;
  // How long a fetch waits for a first message; bounds how long Stop takes.
  absl::Duration fetch_wait = absl::Milliseconds(500);
  // When the server hands an unacked message out again. Must exceed the
  // time a batch takes to apply.
  absl::Duration ack_wait = absl::Seconds(30);
  int max_ack_pending = 1024;
  // Deliveries of a message whose apply keeps failing before it is
  // dead-lettered (_txcoord_consumer_dead) and skipped.
  int max_deliveries = 5;
  // Pause after a failed apply or a NATS or SQLite error; doubles each time
  // in a row, up to max_retry_delay.
  absl::Duration retry_delay = absl::Milliseconds(50);
  absl::Duration max_retry_delay = absl::Seconds(5);
  absl::Duration inbox_retention = absl::Hours(7 * 24);
  absl::Duration prune_interval = absl::Minutes(1);
  absl::Duration connect_timeout = absl::Seconds(5);
};

struct ConsumerStats {
  int64_t applied = 0;          // messages whose apply committed
  int64_t duplicates = 0;       // known to the inbox: acked only
  int64_t already_applied = 0;  // at or below the position: acked only
  int64_t dead_lettered = 0;
  int64_t redelivered = 0;     // deliveries with deliveries > 1
  int64_t apply_failures = 0;  // apply callback errors
  int64_t errors = 0;          // NATS and SQLite errors
  // The durable consumer deleted and recreated to start after the position
  // (unacked deliveries of a crashed predecessor, a delivery lost in a
  // reconnect): the messages after it come again, in stream order.
  int64_t resyncs = 0;
  uint64_t position = 0;   // last stream sequence committed (applied, known or dead)
  std::string last_error;  // empty if none yet
};

// Thread-safe: Start, Stop and stats may be called from any thread.
class Consumer final {
 public:
  // Opens (creating the tables in) the database, connects, checks that the
  // stream exists and sets up the durable consumer to resume after the
  // database's position. Errors: INVALID_ARGUMENT (options, URL),
  // UNAVAILABLE (no NATS server), NOT_FOUND (no such stream),
  // FAILED_PRECONDITION (database cannot be opened or written).
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(ConsumerOptions options,
                                                          ApplyFunction apply);
  // Stops (see Stop) first.
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Starts consuming on a thread of its own. Call once. Errors from then on
  // (lost server, SQLite busy) are counted, logged and retried with
  // backoff; the thread ends only in Stop.
  void Start();
  // Finishes the batch in hand (applied and acked, or handed back), then
  // returns. Idempotent; must not be called from the apply callback.
  void Stop();

  ConsumerStats stats() const;

 private:
  class Impl;
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_CONSUMER_H_
