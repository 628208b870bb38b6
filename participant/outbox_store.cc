// SQL of the outbox table (see outbox_store.h).
#include "participant/outbox_store.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {
namespace {

constexpr char kColumns[] =
    "seq, id, txid, topic, key, headers, state, attempts, committed_at_ms, next_attempt_ms, "
    "delivered_at_ms, last_error, length(payload)";

std::string BlobOrText(const SqlValue& value) {
  if (const auto* blob = std::get_if<Blob>(&value)) return blob->bytes;
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  return "";
}

// A row from the columns of kColumns (payload left out).
absl::StatusOr<OutboxRow> ReadRow(const Statement& stmt) {
  OutboxRow row;
  row.seq = stmt.ColumnInt(0);
  row.id = stmt.ColumnText(1);
  row.txid = stmt.ColumnText(2);
  row.message.topic = stmt.ColumnText(3);
  row.message.key = stmt.ColumnText(4);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> headers =
      DecodeHeaders(BlobOrText(stmt.Column(5)));
  if (!headers.ok()) return headers.status();
  row.message.headers = *std::move(headers);
  const int64_t state = stmt.ColumnInt(6);
  if (state < 0 || state > 2) {
    return absl::DataLossError(absl::StrCat("outbox row ", row.id, " has unknown state ", state));
  }
  row.state = static_cast<OutboxState>(state);
  row.attempts = static_cast<int>(stmt.ColumnInt(7));
  row.committed_at = absl::FromUnixMillis(stmt.ColumnInt(8));
  row.next_attempt = absl::FromUnixMillis(stmt.ColumnInt(9));
  row.delivered_at = absl::FromUnixMillis(stmt.ColumnInt(10));
  row.last_error = stmt.ColumnText(11);
  row.payload_bytes = stmt.ColumnInt(12);
  return row;
}

absl::StatusOr<std::vector<OutboxRow>> ReadRows(Statement& stmt, int payload_column) {
  std::vector<OutboxRow> rows;
  while (true) {
    absl::StatusOr<int> rc = stmt.Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return rows;
    absl::StatusOr<OutboxRow> row = ReadRow(stmt);
    if (!row.ok()) return row.status();
    if (payload_column >= 0) row->message.payload = BlobOrText(stmt.Column(payload_column));
    rows.push_back(*std::move(row));
  }
}

absl::StatusOr<int64_t> Changes(sqlite3* db, absl::Status status) {
  if (!status.ok()) return status;
  return sqlite3_changes64(db);
}

// Runs `sql` (?1 the id, ?2 `arg`) once per id in one transaction; returns
// the rows changed in all.
absl::StatusOr<int64_t> RunForEachId(sqlite3* db, const char* sql,
                                     const std::vector<std::string>& ids, int64_t arg) {
  WriteTransaction tx(db);
  absl::Status status = tx.Begin();
  if (!status.ok()) return status;
  int64_t affected = 0;
  for (const std::string& id : ids) {
    absl::StatusOr<int64_t> changed = Changes(db, RunWith(db, sql, {id, arg}));
    if (!changed.ok()) return changed.status();
    affected += *changed;
  }
  status = tx.Commit();
  if (!status.ok()) return status;
  return affected;
}

}  // namespace

const char* OutboxStateName(OutboxState state) {
  switch (state) {
    case OutboxState::kPending:
      return "pending";
    case OutboxState::kDelivered:
      return "delivered";
    case OutboxState::kDead:
      return "dead";
  }
  return "unknown";
}

absl::Status CreateOutboxTable(sqlite3* db) {
  // AUTOINCREMENT: seq is never reused after deletes, so it stays the
  // commit order for as long as the database lives.
  return ExecSql(
      db,
      "CREATE TABLE IF NOT EXISTS _txcoord_outbox("
      "  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
      "  txid TEXT NOT NULL, topic TEXT NOT NULL, key TEXT NOT NULL,"
      "  headers BLOB NOT NULL, payload BLOB NOT NULL,"
      "  committed_at_ms INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
      "  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
      "  delivered_at_ms INTEGER NOT NULL DEFAULT 0,"
      "  last_error TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX IF NOT EXISTS _txcoord_outbox_by_state"
      "  ON _txcoord_outbox(state, seq);");
}

absl::Status InsertOutboxRows(sqlite3* db, const std::string& txid,
                              const std::vector<std::string>& ids,
                              const std::vector<OutboxMessage>& messages, absl::Time now) {
  if (messages.empty()) return absl::OkStatus();
  absl::StatusOr<Statement> stmt = Statement::Prepare(
      db,
      "INSERT INTO _txcoord_outbox(id, txid, topic, key, headers, payload, committed_at_ms) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!stmt.ok()) return stmt.status();
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (size_t i = 0; i < messages.size(); ++i) {
    const OutboxMessage& m = messages[i];
    absl::Status status = stmt->BindAll(
        {ids[i], txid, m.topic, m.key, Blob{EncodeHeaders(m.headers)}, Blob{m.payload}, now_ms});
    if (status.ok()) status = stmt->Run();
    if (!status.ok()) return status;
    stmt->Reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxRow>> LoadPendingOutbox(sqlite3* db, size_t limit) {
  const std::string sql = absl::StrCat("SELECT ", kColumns,
                                       ", payload FROM _txcoord_outbox WHERE state = 0 "
                                       "ORDER BY seq LIMIT ?1");
  absl::StatusOr<Statement> stmt = PrepareWith(db, sql.c_str(), {static_cast<int64_t>(limit)});
  if (!stmt.ok()) return stmt.status();
  return ReadRows(*stmt, 13);
}

absl::Status RecordOutboxAttempts(sqlite3* db, const std::vector<OutboxAttempt>& attempts,
                                  absl::Time now) {
  if (attempts.empty()) return absl::OkStatus();
  WriteTransaction tx(db);
  absl::Status status = tx.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<Statement> delivered = Statement::Prepare(
      db,
      "UPDATE _txcoord_outbox SET state = 1, attempts = attempts + 1, delivered_at_ms = ?2, "
      "last_error = '' WHERE seq = ?1 AND state = 0");
  if (!delivered.ok()) return delivered.status();
  absl::StatusOr<Statement> failed = Statement::Prepare(
      db,
      "UPDATE _txcoord_outbox SET state = ?2, attempts = attempts + ?5, next_attempt_ms = ?3, "
      "last_error = ?4 WHERE seq = ?1 AND state = 0");
  if (!failed.ok()) return failed.status();
  for (const OutboxAttempt& a : attempts) {
    Statement& stmt = a.delivered ? *delivered : *failed;
    status =
        a.delivered
            ? stmt.BindAll({a.seq, absl::ToUnixMillis(now)})
            : stmt.BindAll(
                  {a.seq, static_cast<int64_t>(a.dead ? OutboxState::kDead : OutboxState::kPending),
                   absl::ToUnixMillis(a.next_attempt), a.error,
                   static_cast<int64_t>(a.counts ? 1 : 0)});
    if (status.ok()) status = stmt.Run();
    if (!status.ok()) return status;
    stmt.Reset();
  }
  return tx.Commit();
}

absl::StatusOr<OutboxCounts> CountOutbox(sqlite3* db, bool count_delivered) {
  absl::StatusOr<Statement> stmt = PrepareWith(
      db,
      "SELECT (SELECT count(*) FROM _txcoord_outbox WHERE state = 0),"
      "       (SELECT count(*) FROM _txcoord_outbox WHERE state = 1 AND ?1),"
      "       (SELECT count(*) FROM _txcoord_outbox WHERE state = 2),"
      "       (SELECT committed_at_ms FROM _txcoord_outbox WHERE state = 0 ORDER BY seq LIMIT 1)",
      {static_cast<int64_t>(count_delivered ? 1 : 0)});
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<int> rc = stmt->Step();
  if (!rc.ok()) return rc.status();
  OutboxCounts counts;
  counts.pending = stmt->ColumnInt(0);
  counts.delivered = stmt->ColumnInt(1);
  counts.dead = stmt->ColumnInt(2);
  if (sqlite3_column_type(stmt->get(), 3) != SQLITE_NULL) {
    counts.oldest_pending = absl::FromUnixMillis(stmt->ColumnInt(3));
  }
  return counts;
}

absl::StatusOr<std::vector<OutboxRow>> ListOutbox(sqlite3* db, std::optional<OutboxState> state,
                                                  size_t limit) {
  const std::string sql = absl::StrCat(
      "SELECT ", kColumns, " FROM _txcoord_outbox WHERE ",
      state.has_value() ? "state = ?1" : "state IN (0, 2) AND ?1 >= 0", " ORDER BY seq LIMIT ?2");
  absl::StatusOr<Statement> stmt = PrepareWith(
      db, sql.c_str(),
      {static_cast<int64_t>(state.value_or(OutboxState::kPending)), static_cast<int64_t>(limit)});
  if (!stmt.ok()) return stmt.status();
  return ReadRows(*stmt, -1);
}

absl::StatusOr<std::optional<OutboxRow>> GetOutboxRow(sqlite3* db, const std::string& id) {
  const std::string sql =
      absl::StrCat("SELECT ", kColumns, ", payload FROM _txcoord_outbox WHERE id = ?1");
  absl::StatusOr<Statement> stmt = PrepareWith(db, sql.c_str(), {id});
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<OutboxRow>> rows = ReadRows(*stmt, 13);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  return std::move(rows->front());
}

absl::StatusOr<int64_t> RetryOutboxRows(sqlite3* db, const std::vector<std::string>& ids,
                                        absl::Time now) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  if (ids.empty()) {
    return Changes(db, RunWith(db,
                               "UPDATE _txcoord_outbox SET state = 0, attempts = 0, "
                               "next_attempt_ms = ?1 WHERE state = 2",
                               {now_ms}));
  }
  return RunForEachId(db,
                      "UPDATE _txcoord_outbox SET state = 0, attempts = 0, "
                      "next_attempt_ms = ?2 WHERE id = ?1 AND state IN (0, 2)",
                      ids, now_ms);
}

absl::StatusOr<int64_t> PurgeOutboxRows(sqlite3* db, OutboxState state,
                                        const std::vector<std::string>& ids) {
  if (state == OutboxState::kPending) {
    return absl::InvalidArgumentError("pending messages are never purged: they are not delivered");
  }
  const auto code = static_cast<int64_t>(state);
  if (ids.empty()) {
    return Changes(db, RunWith(db, "DELETE FROM _txcoord_outbox WHERE state = ?1", {code}));
  }
  return RunForEachId(db, "DELETE FROM _txcoord_outbox WHERE id = ?1 AND state = ?2", ids, code);
}

absl::StatusOr<int64_t> DeleteDeliveredBefore(sqlite3* db, absl::Time cutoff, size_t limit) {
  return Changes(db, RunWith(db,
                             "DELETE FROM _txcoord_outbox WHERE seq IN (SELECT seq FROM "
                             "_txcoord_outbox WHERE state = 1 AND delivered_at_ms < ?1 "
                             "ORDER BY seq LIMIT ?2)",
                             {absl::ToUnixMillis(cutoff), static_cast<int64_t>(limit)}));
}

}  // namespace txcoord::participant
