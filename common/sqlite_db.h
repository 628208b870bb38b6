// Thin RAII helpers over the SQLite C API for the participant and the
// consumer library: an owned
// connection and statement, value conversion to and from SqlValue, and one
// place that turns SQLite result codes into absl::Status.
#ifndef TXCOORD_COMMON_SQLITE_DB_H_
#define TXCOORD_COMMON_SQLITE_DB_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sql_value.h"

namespace txcoord {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// Maps a SQLite result code to a status carrying `context` and the
// connection's error message. SQLITE_OK maps to OkStatus.
absl::Status SqliteStatus(sqlite3* db, int rc, absl::string_view context);

// The canonical code for a SQLite primary result code (syntax and constraint
// errors are INVALID_ARGUMENT, busy is UNAVAILABLE, corruption DATA_LOSS...).
absl::StatusCode SqliteCodeToStatusCode(int rc);

// For a program's main, before its first SQLite call: turns off SQLite's
// memory statistics, which take a process-wide mutex on every allocation
// SQLite makes (nothing in txcoord reads them). FAILED_PRECONDITION once
// SQLite is in use (initialized).
absl::Status TurnOffSqliteMemoryStatistics();

// Runs SQL without results (may hold several statements). For internal use
// only: no parameters, so never pass it service input.
absl::Status ExecSql(sqlite3* db, const char* sql);

// Quotes an identifier for SQL text: "name" with embedded quotes doubled.
std::string QuoteIdentifier(absl::string_view name);

SqlValue ValueFromSqlite(sqlite3_value* value);

// A prepared statement, finalized on destruction. Not thread-safe; use it
// under the lock that guards its connection.
class Statement final {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Compiles the first statement of `sql`; `tail` (optional) receives the
  // offset of the text after it. A statement of only whitespace or comments
  // yields an empty Statement (get() == nullptr).
  static absl::StatusOr<Statement> Prepare(sqlite3* db, absl::string_view sql,
                                           size_t* tail = nullptr);

  absl::Status Bind(int index, const SqlValue& value);  // 1-based
  absl::Status BindAll(const std::vector<SqlValue>& values);
  // SQLITE_ROW or SQLITE_DONE; any other code as an error status.
  absl::StatusOr<int> Step();
  // Steps until done, discarding rows.
  absl::Status Run();
  SqlValue Column(int index) const;
  int64_t ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }
  std::string ColumnText(int index) const;
  void Reset();

  sqlite3_stmt* get() const { return stmt_; }

 private:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* stmt_ = nullptr;
};

// Internal SQL with bound parameters: compiles `sql` and binds `params`
// (RunWith also steps it to the end).
absl::StatusOr<Statement> PrepareWith(sqlite3* db, const char* sql,
                                      const std::vector<SqlValue>& params);
absl::Status RunWith(sqlite3* db, const char* sql, const std::vector<SqlValue>& params);

// A write transaction: BEGIN IMMEDIATE takes SQLite's write lock at once, so
// that a later write cannot fail with SQLITE_BUSY halfway through. Rolled
// back on destruction unless committed. Not thread-safe.
class WriteTransaction final {
 public:
  explicit WriteTransaction(sqlite3* db) : db_(db) {}
  ~WriteTransaction() { Rollback(); }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  absl::Status Begin();
  // Rolls back if COMMIT fails.
  absl::Status Commit();
  void Rollback();

 private:
  sqlite3* db_;
  bool active_ = false;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SQLITE_DB_H_
