// What the participant needs to know about the service's tables: primary
// keys, UNIQUE indexes and foreign keys (to derive row-lock keys from a
// changeset) and which tables a branch may write. Read through PRAGMAs and
// cached until PRAGMA schema_version changes.
#ifndef TXCOORD_PARTICIPANT_SCHEMA_H_
#define TXCOORD_PARTICIPANT_SCHEMA_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {

// SQLite column affinity, from the declared type (datatype3.html rules).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };
Affinity AffinityOfDeclaredType(absl::string_view declared_type);

// Collations that change which values are equal. Any other (application
// defined) collation is treated as BINARY, which can only under-detect
// equality of index values; see lock_keys.h.
enum class Collation { kBinary, kNoCase, kRtrim };
Collation ParseCollation(absl::string_view name);

struct ColumnInfo {
  std::string name;
  Affinity affinity = Affinity::kBlob;
  // Declared with (or defaulting to) BINARY: `=` on it compares values as
  // stored. Any other collation, known or not, clears it.
  bool binary_collation = true;
};

// Columns of a key as indexes into TableInfo::columns, in key order.
struct KeyColumns {
  std::vector<int> columns;
  std::vector<Collation> collations;
};

struct UniqueIndex {
  std::string name;
  KeyColumns key;
  // An index on expressions (or hidden columns): its values cannot be
  // derived from a changeset, so writers lock the index as a whole.
  bool on_expressions = false;
};

struct ForeignKey {
  std::string parent_table;
  std::vector<int> child_columns;           // indexes into the child's columns
  std::vector<std::string> parent_columns;  // empty: the parent's primary key
  // ON DELETE/UPDATE CASCADE, SET NULL or SET DEFAULT: applying a changeset
  // may then find rows already changed by the action.
  bool has_action = false;
};

struct TableInfo {
  enum class Kind { kTable, kVirtual, kView };
  std::string name;
  Kind kind = Kind::kTable;
  std::vector<ColumnInfo> columns;  // visible columns, as a changeset has them
  bool has_generated_columns = false;
  KeyColumns primary_key;  // empty: no declared PRIMARY KEY
  // A rowid table whose PRIMARY KEY is not the rowid and may hold NULL (an
  // old SQLite quirk). The session extension skips rows with a NULL key.
  bool primary_key_nullable = false;
  std::vector<UniqueIndex> unique_indexes;
  std::vector<ForeignKey> foreign_keys;
  bool has_triggers = false;  // a trigger fires on its writes

  int ColumnIndex(absl::string_view column) const;  // -1 if none
};

// Not thread-safe: used under the lock that guards the connection.
class Schema final {
 public:
  Schema() = default;
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  // Reloads everything if PRAGMA schema_version moved since the last load.
  // Must run with the authorizer bypassed and no statement of the service
  // being prepared (it runs SQL on `db`). Call it inside the transaction
  // that relies on it: outside one, reading the version takes and drops a
  // read lock of its own (about a tenth of a branch's CPU in-process).
  // `statements` (optional, of `db`) keeps the version's query compiled.
  absl::Status Refresh(sqlite3* db, StatementCache* statements = nullptr);

  // Case-insensitive, like SQLite names; nullptr if unknown.
  const TableInfo* Find(absl::string_view table) const;

  // Why a branch may not write `table` (no PRIMARY KEY, generated columns,
  // virtual table, unknown), or empty if it may.
  std::string BranchWriteRefusal(absl::string_view table) const;

  // Whether some table declares a FOREIGN KEY.
  bool HasForeignKeys() const { return has_foreign_keys_; }
  // PRAGMA schema_version when last loaded.
  int64_t version() const { return version_; }

 private:
  absl::Status Load(sqlite3* db);
  absl::Status LoadTriggers(sqlite3* db);

  int64_t version_ = -1;
  absl::flat_hash_map<std::string, TableInfo> tables_;  // by lower-case name
  bool has_foreign_keys_ = false;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_SCHEMA_H_
