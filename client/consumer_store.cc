#include "client/consumer_store.h"

#include <utility>

#include "absl/strings/str_cat.h"

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

// A prepared statement, finalized on scope exit.
class Statement final {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, const std::string& text) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                              SQLITE_TRANSIENT);
    }
    return *this;
  }
  Statement& BindBlob(int index, const std::string& bytes) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                              SQLITE_TRANSIENT);
    }
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  // Steps once: true with a row, false when done; an error otherwise.
  absl::StatusOr<bool> Step(absl::string_view what) {
    if (rc_ != SQLITE_OK) return Error(what);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    rc_ = rc;
    return Error(what);
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db_)));
  }

  sqlite3* const db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

int64_t ToMs(absl::Time time) { return absl::ToUnixMillis(time); }

}  // namespace

absl::StatusOr<std::unique_ptr<ConsumerStore>> ConsumerStore::Open(const std::string& path,
                                                                   bool durable_sync) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open consumer database ", path, ": ", detail));
  }
  std::unique_ptr<ConsumerStore> store(new ConsumerStore(db));
  // Another writer of the service's database (its own request handlers)
  // may hold the write lock for a moment.
  sqlite3_busy_timeout(db, 5000);
  if (durable_sync) {
    if (absl::Status status = store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
        !status.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("consumer database ", path, " is not writable: ", status.message()));
    }
  }
  if (absl::Status status = store->Exec(kSchema); !status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("consumer database ", path, " is not writable: ", status.message()));
  }
  return store;
}

ConsumerStore::~ConsumerStore() { sqlite3_close(db_); }

absl::Status ConsumerStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) == SQLITE_OK) return absl::OkStatus();
  absl::Status status =
      absl::InternalError(absl::StrCat(sql, ": ", error != nullptr ? error : sqlite3_errmsg(db_)));
  sqlite3_free(error);
  return status;
}

absl::StatusOr<uint64_t> ConsumerStore::Position(const std::string& durable) {
  Statement select(db_, "SELECT stream_seq FROM _txcoord_consumer_position WHERE durable = ?1");
  absl::StatusOr<bool> row = select.Bind(1, durable).Step("read consumer position");
  if (!row.ok()) return row.status();
  return *row ? static_cast<uint64_t>(select.Int(0)) : 0;
}

absl::StatusOr<BatchResult> ConsumerStore::ApplyBatch(
    const std::string& durable, const std::string& stream,
    const std::vector<const InboundMessage*>& messages, const ApplyFunction& apply,
    int max_deliveries, absl::Time now) {
  BatchResult result;
  result.dispositions.assign(messages.size(), Disposition::kNak);
  if (absl::Status status = Exec("BEGIN IMMEDIATE"); !status.ok()) return status;
  // Anything that fails from here on undoes the whole batch.
  auto fail = [this](absl::Status status) {
    if (!sqlite3_get_autocommit(db_)) (void)Exec("ROLLBACK");
    return status;
  };
  absl::StatusOr<uint64_t> start = Position(durable);
  if (!start.ok()) return fail(start.status());
  uint64_t position = *start;
  const int64_t now_ms = ToMs(now);

  auto remember = [&](const InboundMessage& message) -> absl::Status {
    Statement insert(db_,
                     "INSERT INTO _txcoord_inbox(msg_id, stream_seq, applied_at_ms) "
                     "VALUES(?1, ?2, ?3)");
    return insert.Bind(1, message.id)
        .Bind(2, static_cast<int64_t>(message.stream_seq))
        .Bind(3, now_ms)
        .Step("insert inbox row")
        .status();
  };

  for (size_t i = 0; i < messages.size(); ++i) {
    const InboundMessage& message = *messages[i];
    if (message.stream_seq <= position) {
      result.dispositions[i] = Disposition::kAck;
      ++result.already_applied;
      continue;
    }
    Statement lookup(db_, "SELECT 1 FROM _txcoord_inbox WHERE msg_id = ?1");
    absl::StatusOr<bool> known = lookup.Bind(1, message.id).Step("look up inbox");
    if (!known.ok()) return fail(known.status());
    if (*known) {
      result.dispositions[i] = Disposition::kAck;
      ++result.duplicates;
      position = message.stream_seq;
      continue;
    }
    if (absl::Status status = Exec("SAVEPOINT txcoord_message"); !status.ok()) {
      return fail(status);
    }
    absl::Status applied = apply(db_, message);
    if (sqlite3_get_autocommit(db_)) {
      // Some errors (disk full, I/O) make SQLite roll the whole transaction
      // back; a callback that commits breaks the contract. Either way the
      // batch's earlier work is not what we would commit.
      return fail(absl::InternalError(absl::StrCat(
          "the consumer's transaction ended inside the apply of message ", message.id,
          applied.ok() ? " (did it COMMIT or ROLLBACK?)" : absl::StrCat(": ", applied.message()))));
    }
    if (applied.ok()) {
      if (absl::Status status = remember(message); !status.ok()) return fail(status);
      if (absl::Status status = Exec("RELEASE txcoord_message"); !status.ok()) return fail(status);
      result.dispositions[i] = Disposition::kAck;
      ++result.applied;
      position = message.stream_seq;
      continue;
    }
    if (absl::Status status = Exec("ROLLBACK TO txcoord_message; RELEASE txcoord_message");
        !status.ok()) {
      return fail(status);
    }
    if (message.deliveries < max_deliveries) {
      result.apply_error = applied;
      result.failed_deliveries = message.deliveries;
      break;  // the rest stays kNak, to come back in order
    }
    Statement dead(db_,
                   "INSERT OR REPLACE INTO _txcoord_consumer_dead"
                   "(msg_id, stream_seq, topic, payload, error, deliveries, at_ms) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    absl::Status stored = dead.Bind(1, message.id)
                              .Bind(2, static_cast<int64_t>(message.stream_seq))
                              .Bind(3, message.topic)
                              .BindBlob(4, message.payload)
                              .Bind(5, applied.ToString())
                              .Bind(6, static_cast<int64_t>(message.deliveries))
                              .Bind(7, now_ms)
                              .Step("insert dead letter")
                              .status();
    if (stored.ok()) stored = remember(message);
    if (!stored.ok()) return fail(stored);
    result.dispositions[i] = Disposition::kTerm;
    ++result.dead_lettered;
    position = message.stream_seq;
  }

  if (position != *start) {
    Statement update(db_,
                     "INSERT INTO _txcoord_consumer_position(durable, stream, stream_seq) "
                     "VALUES(?1, ?2, ?3) ON CONFLICT(durable) DO UPDATE SET "
                     "stream = excluded.stream, stream_seq = excluded.stream_seq");
    absl::Status status = update.Bind(1, durable)
                              .Bind(2, stream)
                              .Bind(3, static_cast<int64_t>(position))
                              .Step("update consumer position")
                              .status();
    if (!status.ok()) return fail(status);
  }
  if (absl::Status status = Exec("COMMIT"); !status.ok()) return fail(status);
  result.position = position;
  return result;
}

absl::StatusOr<int64_t> ConsumerStore::PruneInbox(absl::Time cutoff) {
  Statement prune(db_, "DELETE FROM _txcoord_inbox WHERE applied_at_ms < ?1");
  absl::Status status = prune.Bind(1, ToMs(cutoff)).Step("prune inbox").status();
  if (!status.ok()) return status;
  return static_cast<int64_t>(sqlite3_changes(db_));
}

}  // namespace txcoord::consumer_internal
