// Recording and applying a branch's changes: a recorder that captures a
// branch's writes as a changeset with SQLite's session extension, and an
// apply that installs a whole changeset or fails (the session extension's,
// and ChangesetApplier, which keeps its statements across applies).
#ifndef TXCOORD_PARTICIPANT_CHANGESET_H_
#define TXCOORD_PARTICIPANT_CHANGESET_H_

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sqlite_db.h"
#include "participant/schema.h"

namespace txcoord::participant {

// A session on the main database. Records changes to the tables a branch
// may write (Schema::BranchWriteRefusal empty); others are filtered out, as
// the session extension cannot record them anyway. `schema` must outlive
// the recorder and stay unrefreshed meanwhile. Not thread-safe.
class ChangeRecorder final {
 public:
  static absl::StatusOr<std::unique_ptr<ChangeRecorder>> Start(sqlite3* db, const Schema* schema);
  ~ChangeRecorder();
  ChangeRecorder(const ChangeRecorder&) = delete;
  ChangeRecorder& operator=(const ChangeRecorder&) = delete;

  // Everything recorded since Start, net: a row inserted then updated is one
  // INSERT of its last values. Empty if nothing changed.
  absl::StatusOr<std::string> Changeset();

 private:
  ChangeRecorder(sqlite3* db, sqlite3_session* session) : db_(db), session_(session) {}
  static int Filter(void* schema, const char* table);

  sqlite3* db_;
  sqlite3_session* session_;
};

// Applies `changeset` inside the caller's transaction (CHECKed): all of
// it, or an error naming the first conflict, after which the transaction
// holds part of it, with its foreign-key counts reset, and the caller must
// roll it (or its savepoint) back. Triggers are off meanwhile, since the
// changeset already holds what they did. The only conflicts tolerated are
// those this apply's own foreign-key actions (CASCADE, SET NULL, SET
// DEFAULT) cause on the child table, where the changeset's target state wins.
// Checks first that every table matches its recorded shape, because SQLite
// skips changes to missing tables silently. Runs SQL: the authorizer must be
// bypassed.
absl::Status ApplyChangeset(sqlite3* db, const Schema& schema, const std::string& changeset);

// ApplyChangeset with statements kept across applies. Where
// AppliesAsRecorded's conditions hold and no changed table has a trigger
// (so that no change's outcome depends on another's, and there is nothing
// to switch off), each change runs as one statement compiled once per
// table and shape of change: the session extension's apply compiles its
// statements, and its pragmas and the trigger switch expire every
// statement of the connection, on each apply. Elsewhere it is
// ApplyChangeset, which checks foreign keys at its end, settles
// foreign-key actions' conflicts and turns triggers off. Both find a
// change's row by primary key and its old values (IS, so NULLs match),
// refuse the same conflicts with the same messages, and report a change
// that failed a constraint only after the table's other changes (the
// session extension retries it there). Not thread-safe: use it under the
// lock that guards `db`.
class ChangesetApplier final {
 public:
  explicit ChangesetApplier(sqlite3* db) : db_(db), statements_(db, kMaxKeptStatements) {}
  ChangesetApplier(const ChangesetApplier&) = delete;
  ChangesetApplier& operator=(const ChangesetApplier&) = delete;

  // ApplyChangeset's contract.
  absl::Status Apply(const Schema& schema, const std::string& changeset);

  // Statements kept (for tests).
  size_t kept() const { return statements_.size(); }
  // Kept statements are dropped past this many (a wide table updated in
  // many shapes), so that memory stays bounded.
  static constexpr size_t kMaxKeptStatements = 256;

 private:
  // `*set_aside`: refused by a constraint the session extension would retry
  // after the table's other changes.
  absl::Status ApplyChange(const TableInfo& table, sqlite3_changeset_iter* iter, int op,
                           bool* set_aside);
  // After a change found no row, or failed a constraint: which conflict.
  absl::Status Refused(const TableInfo& table, sqlite3_changeset_iter* iter, int op,
                       bool constraint_failed, bool* set_aside);

  sqlite3* const db_;
  int64_t schema_version_ = -1;
  StatementCache statements_;
};

// Whether `changeset`, recorded inside the open transaction from the state
// it was rolled back to, is sure to apply to that state, so that no trial
// apply is needed: true when the schema declares no FOREIGN KEY and every
// table the changeset changes has no UNIQUE constraint but its primary key,
// whose values compare and read back as stored (BINARY collation on the
// column and in the key's index; INTEGER, TEXT or NUMERIC affinity, which a
// STRICT table's ANY column has not). Each
// change then touches its own row alone, found by its primary key, with
// old values read from this very state, so no order of application can
// make one fail. Otherwise an apply can fail where the statements ran: two
// rows that swap a UNIQUE value conflict in one order, a deferred foreign
// key is checked only at the end of an apply, and renaming a NOCASE key to
// another case, or inserting then updating a REAL key, is recorded as two
// changes of one row.
bool AppliesAsRecorded(const Schema& schema, const std::string& changeset);

// INVALID_ARGUMENT if one of `tables` (as the open transaction sees them)
// has a row whose PRIMARY KEY is NULL: the session extension skips such rows,
// so a branch's change to them would be lost. Runs SQL: the authorizer must
// be bypassed.
absl::Status CheckNoNullKeys(sqlite3* db, const Schema& schema,
                             const absl::flat_hash_set<std::string>& tables);

// INTERNAL unless `table` exists with the column count and primary key that
// the change at `iter` has.
absl::Status CheckChangeShape(const TableInfo* table, const char* name,
                              sqlite3_changeset_iter* iter, int column_count);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_CHANGESET_H_
