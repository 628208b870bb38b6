// The SQLite authorizer that fences a service's SQL: the agent's own tables
// (_txcoord_*), ATTACH, extension loading, transaction control and schema
// tricks are refused; inside a branch, DDL and writes the session extension
// could not record are refused too. The agent's internal SQL bypasses it.
#ifndef TXCOORD_PARTICIPANT_AUTHORIZER_H_
#define TXCOORD_PARTICIPANT_AUTHORIZER_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "participant/schema.h"

namespace txcoord::participant {

// Not thread-safe: used under the lock that guards its connection.
class Authorizer final {
 public:
  enum class Mode {
    kInternal,  // the agent's own SQL: everything allowed
    kLocal,     // service SQL outside a branch: DDL allowed
    kBranch,    // service SQL inside a branch
  };

  // `schema` tells which tables a branch may write; it must outlive this.
  explicit Authorizer(const Schema* schema) : schema_(schema) {}
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // Installs the callback on `db`; this object must outlive the connection's
  // use.
  void Install(sqlite3* db);

  // Service SQL is judged from BeginStatement until EndStatement (SQLite may
  // re-prepare while stepping), internal SQL at any other time.
  void BeginStatement(Mode mode);
  void EndStatement();

  // After a statement compiled (or failed to with SQLITE_AUTH): why it may
  // not run, or OK. Some refusals are only known once the whole statement
  // has been seen: SQLite reports DDL's own writes to sqlite_schema before
  // the DDL action itself.
  absl::Status Verdict() const;

  // Whether any statement since the last ResetBatch was DDL, and which
  // tables of the main database it writes.
  void ResetBatch() {
    batch_had_ddl_ = false;
    tables_written_.clear();
  }
  bool batch_had_ddl() const { return batch_had_ddl_; }
  const absl::flat_hash_set<std::string>& tables_written() const { return tables_written_; }

  // The tables the statement compiled since the last BeginStatement
  // writes, and whether it is DDL. A kept statement, which SQLite does not
  // judge again, brings those tables to each batch it runs in
  // (NoteWritten).
  const std::vector<std::string>& statement_tables_written() const {
    return statement_tables_written_;
  }
  bool statement_is_ddl() const { return statement_is_ddl_; }
  void NoteWritten(const std::vector<std::string>& tables) {
    tables_written_.insert(tables.begin(), tables.end());
  }

 private:
  static int Callback(void* self, int action, const char* arg1, const char* arg2,
                      const char* database, const char* trigger);
  int Decide(int action, const char* arg1, const char* arg2, const char* database);
  int Deny(absl::StatusCode code, std::string message);

  const Schema* schema_;
  Mode mode_ = Mode::kInternal;
  absl::Status denial_;               // first refusal of the current statement
  std::string sqlite_table_written_;  // a sqlite_* table the statement writes
  bool statement_is_ddl_ = false;
  bool batch_had_ddl_ = false;
  absl::flat_hash_set<std::string> tables_written_;
  std::vector<std::string> statement_tables_written_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_AUTHORIZER_H_
