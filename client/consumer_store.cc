#include "client/consumer_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"

namespace txcoord::consumer_internal {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS _txcoord_inbox(
  msg_id TEXT PRIMARY KEY,
  stream_seq INTEGER NOT NULL,
  applied_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS _txcoord_inbox_by_time ON _txcoord_inbox(applied_at_ms);
CREATE TABLE IF NOT EXISTS _txcoord_consumer_position(
  durable TEXT PRIMARY KEY,
  stream TEXT NOT NULL,
  stream_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _txcoord_consumer_dead(
  msg_id TEXT PRIMARY KEY,
  stream_seq INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB,
  error TEXT NOT NULL,
  deliveries INTEGER NOT NULL,
  at_ms INTEGER NOT NULL);
)sql";

int64_t ToMs(absl::Time time) { return absl::ToUnixMillis(time); }

}  // namespace

absl::StatusOr<std::unique_ptr<ConsumerStore>> ConsumerStore::Open(const std::string& path,
                                                                   bool durable_sync) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open consumer database ", path, ": ",
                     raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  // Another writer of the service's database (its own request handlers)
  // may hold the write lock for a moment.
  sqlite3_busy_timeout(db.get(), 5000);
  absl::Status status = durable_sync
                            ? ExecSql(db.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL")
                            : absl::OkStatus();
  if (status.ok()) status = ExecSql(db.get(), kSchema);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("consumer database ", path, " is not writable: ", status.message()));
  }
  return std::unique_ptr<ConsumerStore>(new ConsumerStore(std::move(db)));
}

absl::StatusOr<uint64_t> ConsumerStore::Position(const std::string& durable) {
  absl::StatusOr<Statement> select = PrepareWith(
      db(), "SELECT stream_seq FROM _txcoord_consumer_position WHERE durable = ?1", {durable});
  if (!select.ok()) return select.status();
  absl::StatusOr<int> row = select->Step();
  if (!row.ok()) return row.status();
  return *row == SQLITE_ROW ? static_cast<uint64_t>(select->ColumnInt(0)) : 0;
}

absl::StatusOr<BatchResult> ConsumerStore::ApplyBatch(
    const std::string& durable, const std::string& stream,
    const std::vector<const InboundMessage*>& messages, const ApplyFunction& apply,
    int max_deliveries, absl::Time now) {
  BatchResult result;
  result.dispositions.assign(messages.size(), Disposition::kNak);
  // Anything that fails from here on undoes the whole batch (the
  // transaction rolls back when it goes out of scope uncommitted).
  WriteTransaction tx(db());
  if (absl::Status status = tx.Begin(); !status.ok()) return status;
  absl::StatusOr<uint64_t> start = Position(durable);
  if (!start.ok()) return start.status();
  uint64_t position = *start;
  const int64_t now_ms = ToMs(now);
  // Compiled once per batch, run once per message.
  absl::StatusOr<Statement> lookup =
      Statement::Prepare(db(), "SELECT 1 FROM _txcoord_inbox WHERE msg_id = ?1");
  if (!lookup.ok()) return lookup.status();
  absl::StatusOr<Statement> insert = Statement::Prepare(
      db(), "INSERT INTO _txcoord_inbox(msg_id, stream_seq, applied_at_ms) VALUES(?1, ?2, ?3)");
  if (!insert.ok()) return insert.status();
  auto remember = [&](const InboundMessage& message) -> absl::Status {
    insert->Reset();
    absl::Status status =
        insert->BindAll({message.id, static_cast<int64_t>(message.stream_seq), now_ms});
    return status.ok() ? insert->Run() : status;
  };

  for (size_t i = 0; i < messages.size(); ++i) {
    const InboundMessage& message = *messages[i];
    if (message.stream_seq <= position) {
      result.dispositions[i] = Disposition::kAck;
      ++result.already_applied;
      continue;
    }
    lookup->Reset();
    if (absl::Status status = lookup->BindAll({message.id}); !status.ok()) return status;
    absl::StatusOr<int> known = lookup->Step();
    if (!known.ok()) return known.status();
    if (*known == SQLITE_ROW) {
      result.dispositions[i] = Disposition::kAck;
      ++result.duplicates;
      position = message.stream_seq;
      continue;
    }
    if (absl::Status status = ExecSql(db(), "SAVEPOINT txcoord_message"); !status.ok()) {
      return status;
    }
    absl::Status applied = apply(db(), message);
    if (sqlite3_get_autocommit(db())) {
      // Some errors (disk full, I/O) make SQLite roll the whole transaction
      // back; a callback that commits breaks the contract. Either way the
      // batch's earlier work is not what we would commit.
      return absl::InternalError(absl::StrCat(
          "the consumer's transaction ended inside the apply of message ", message.id,
          applied.ok() ? " (did it COMMIT or ROLLBACK?)" : absl::StrCat(": ", applied.message())));
    }
    if (applied.ok()) {
      absl::Status status = remember(message);
      if (status.ok()) status = ExecSql(db(), "RELEASE txcoord_message");
      if (!status.ok()) return status;
      result.dispositions[i] = Disposition::kAck;
      ++result.applied;
      position = message.stream_seq;
      continue;
    }
    if (absl::Status status = ExecSql(db(), "ROLLBACK TO txcoord_message; RELEASE txcoord_message");
        !status.ok()) {
      return status;
    }
    if (message.deliveries < max_deliveries) {
      result.apply_error = applied;
      result.failed_deliveries = message.deliveries;
      break;  // the rest stays kNak, to come back in order
    }
    absl::Status stored = RunWith(
        db(),
        "INSERT OR REPLACE INTO _txcoord_consumer_dead"
        "(msg_id, stream_seq, topic, payload, error, deliveries, at_ms) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        {message.id, static_cast<int64_t>(message.stream_seq), message.topic, Blob{message.payload},
         applied.ToString(), static_cast<int64_t>(message.deliveries), now_ms});
    if (stored.ok()) stored = remember(message);
    if (!stored.ok()) return stored;
    result.dispositions[i] = Disposition::kTerm;
    ++result.dead_lettered;
    position = message.stream_seq;
  }

  if (position != *start) {
    absl::Status status =
        RunWith(db(),
                "INSERT INTO _txcoord_consumer_position(durable, stream, stream_seq) "
                "VALUES(?1, ?2, ?3) ON CONFLICT(durable) DO UPDATE SET "
                "stream = excluded.stream, stream_seq = excluded.stream_seq",
                {durable, stream, static_cast<int64_t>(position)});
    if (!status.ok()) return status;
  }
  if (absl::Status status = tx.Commit(); !status.ok()) return status;
  result.position = position;
  return result;
}

absl::StatusOr<int64_t> ConsumerStore::PruneInbox(absl::Time cutoff) {
  absl::Status status =
      RunWith(db(), "DELETE FROM _txcoord_inbox WHERE applied_at_ms < ?1", {ToMs(cutoff)});
  if (!status.ok()) return status;
  return static_cast<int64_t>(sqlite3_changes(db()));
}

}  // namespace txcoord::consumer_internal
