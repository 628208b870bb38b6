#include "common/sqlite_db.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace txcoord {

absl::StatusCode SqliteCodeToStatusCode(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK:
      return absl::StatusCode::kOk;
    case SQLITE_ERROR:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_AUTH:
    case SQLITE_PERM:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_NOMEM:
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kCancelled;
    case SQLITE_READONLY:
    case SQLITE_SCHEMA:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqliteStatus(sqlite3* db, int rc, absl::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return absl::OkStatus();
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(SqliteCodeToStatusCode(rc), absl::StrCat(context, ": ", message));
}

absl::Status TurnOffSqliteMemoryStatistics() {
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK) {
    return absl::FailedPreconditionError(
        "SQLite's memory statistics can only be turned off before SQLite is first used");
  }
  return absl::OkStatus();
}

absl::Status ExecSql(sqlite3* db, const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status(SqliteCodeToStatusCode(rc),
                      absl::StrCat(sql, ": ", error != nullptr ? error : sqlite3_errstr(rc)));
  sqlite3_free(error);
  return status;
}

std::string QuoteIdentifier(absl::string_view name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

SqlValue ValueFromSqlite(sqlite3_value* value) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_value_int64(value));
    case SQLITE_FLOAT:
      return sqlite3_value_double(value);
    case SQLITE_TEXT:
      return std::string(reinterpret_cast<const char*>(sqlite3_value_text(value)),
                         sqlite3_value_bytes(value));
    case SQLITE_BLOB: {
      const void* data = sqlite3_value_blob(value);
      const int size = sqlite3_value_bytes(value);
      return Blob{size > 0 ? std::string(static_cast<const char*>(data), size) : std::string()};
    }
    default:
      return std::monostate{};
  }
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db, absl::string_view sql, size_t* tail) {
  sqlite3_stmt* stmt = nullptr;
  const char* end = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, &end);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatus(db, rc, "prepare");
  }
  if (tail != nullptr) *tail = end != nullptr ? static_cast<size_t>(end - sql.data()) : sql.size();
  return Statement(stmt);
}

absl::Status Statement::Bind(int index, const SqlValue& value) {
  int rc = SQLITE_OK;
  if (std::holds_alternative<std::monostate>(value)) {
    rc = sqlite3_bind_null(stmt_, index);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    rc = sqlite3_bind_int64(stmt_, index, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    rc = sqlite3_bind_double(stmt_, index, *d);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    rc = sqlite3_bind_text64(stmt_, index, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } else {
    const std::string& bytes = std::get<Blob>(value).bytes;
    rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  }
  return SqliteStatus(sqlite3_db_handle(stmt_), rc, absl::StrCat("bind parameter ", index));
}

absl::Status Statement::BindAll(const std::vector<SqlValue>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    absl::Status status = Bind(static_cast<int>(i + 1), values[i]);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
  return SqliteStatus(sqlite3_db_handle(stmt_), rc, "step");
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<int> rc = Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return absl::OkStatus();
  }
}

SqlValue Statement::Column(int index) const {
  // sqlite3_column_value() returns an unprotected value, which the
  // sqlite3_value_* accessors may not read; the column accessors may.
  switch (sqlite3_column_type(stmt_, index)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_column_int64(stmt_, index));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt_, index);
    case SQLITE_TEXT:
      return ColumnText(index);
    case SQLITE_BLOB: {
      const void* data = sqlite3_column_blob(stmt_, index);
      const int size = sqlite3_column_bytes(stmt_, index);
      return Blob{size > 0 ? std::string(static_cast<const char*>(data), size) : std::string()};
    }
    default:
      return std::monostate{};
  }
}

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, index));
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

absl::StatusOr<Statement*> StatementCache::Get(absl::string_view sql) {
  absl::StatusOr<Statement*> stmt = Find(sql);
  if (stmt.ok()) (*stmt)->Reset();
  return stmt;
}

absl::StatusOr<Statement*> StatementCache::Find(absl::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    if (statements_.size() >= capacity_) statements_.clear();
    size_t tail = 0;
    absl::StatusOr<Statement> stmt = Statement::Prepare(db_, sql, &tail);
    if (!stmt.ok()) return stmt.status();
    if (stmt->get() == nullptr || !absl::StripAsciiWhitespace(sql.substr(tail)).empty()) {
      return absl::InternalError(absl::StrCat("not one statement: ", sql));
    }
    it = statements_.emplace(std::string(sql), *std::move(stmt)).first;
  }
  return &it->second;
}

absl::Status StatementCache::Run(absl::string_view sql, const std::vector<SqlValue>& params) {
  // Reset once, after the run: every statement Run leaves is reset already.
  absl::StatusOr<Statement*> stmt = Find(sql);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = (*stmt)->BindAll(params);
  while (status.ok()) {
    const int rc = sqlite3_step((*stmt)->get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      status =
          absl::Status(SqliteCodeToStatusCode(rc), absl::StrCat(sql, ": ", sqlite3_errmsg(db_)));
    }
  }
  (*stmt)->Reset();
  return status;
}

absl::Status WriteTransaction::Control(const char* sql) {
  return statements_ != nullptr ? statements_->Run(sql) : ExecSql(db_, sql);
}

absl::Status WriteTransaction::Begin() {
  absl::Status status = Control("BEGIN IMMEDIATE");
  active_ = status.ok();
  return status;
}

absl::Status WriteTransaction::Commit() {
  absl::Status status = Control("COMMIT");
  if (status.ok()) {
    active_ = false;
  } else {
    Rollback();
  }
  return status;
}

void WriteTransaction::Rollback() {
  // SQLite itself ends the transaction on some errors (I/O, out of memory).
  if (active_ && sqlite3_get_autocommit(db_) == 0) (void)Control("ROLLBACK");
  active_ = false;
}

absl::StatusOr<Statement> PrepareWith(sqlite3* db, const char* sql,
                                      const std::vector<SqlValue>& params) {
  absl::StatusOr<Statement> stmt = Statement::Prepare(db, sql);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->BindAll(params);
  if (!status.ok()) return status;
  return stmt;
}

absl::Status RunWith(sqlite3* db, const char* sql, const std::vector<SqlValue>& params) {
  absl::StatusOr<Statement> stmt = PrepareWith(db, sql, params);
  if (!stmt.ok()) return stmt.status();
  return stmt->Run();
}

}  // namespace txcoord
