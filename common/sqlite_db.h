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

#include "absl/container/node_hash_map.h"
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

// Statements of one connection kept compiled across uses, by SQL text, so
// that SQL run again and again (transaction control, txcoord's own tables)
// is parsed once, not at every use. Compiled statements follow schema
// changes by themselves (SQLite prepares them again when the schema moved).
// Not thread-safe: use it under the lock that guards its connection, and
// destroy it before the connection closes.
class StatementCache final {
 public:
  // At most `capacity` statements are kept: a new one past it drops them all.
  explicit StatementCache(sqlite3* db, size_t capacity = 256) : db_(db), capacity_(capacity) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement for `sql` (exactly one statement), reset, its parameters
  // unbound. The pointer stays valid until Clear or a Get of a statement
  // not kept yet; it must not be in use when Get is called for the same
  // SQL again, and is to be reset when done (Run, which resets only after
  // its run, relies on that).
  absl::StatusOr<Statement*> Get(absl::string_view sql);
  // Runs `sql` with `params` to its end and resets it, releasing what it
  // read. An error that running it met reads "<sql>: <SQLite's message>",
  // as ExecSql's do.
  absl::Status Run(absl::string_view sql, const std::vector<SqlValue>& params = {});
  void Clear() { statements_.clear(); }
  size_t size() const { return statements_.size(); }

 private:
  // The kept statement for `sql` (compiled if new), as it was left.
  absl::StatusOr<Statement*> Find(absl::string_view sql);

  sqlite3* const db_;
  const size_t capacity_;
  absl::node_hash_map<std::string, Statement> statements_;
};

// A write transaction: BEGIN IMMEDIATE takes SQLite's write lock at once, so
// that a later write cannot fail with SQLITE_BUSY halfway through. Rolled
// back on destruction unless committed. Not thread-safe.
class WriteTransaction final {
 public:
  // `statements` (optional, of `db`) keeps BEGIN, COMMIT and ROLLBACK
  // compiled.
  explicit WriteTransaction(sqlite3* db, StatementCache* statements = nullptr)
      : db_(db), statements_(statements) {}
  ~WriteTransaction() { Rollback(); }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  absl::Status Begin();
  // Rolls back if COMMIT fails.
  absl::Status Commit();
  void Rollback();

 private:
  // Runs one statement of transaction control.
  absl::Status Control(const char* sql);

  sqlite3* db_;
  StatementCache* statements_;
  bool active_ = false;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SQLITE_DB_H_
