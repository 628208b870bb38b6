#include "participant/changeset.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/check.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {
namespace {

using IterPtr = std::unique_ptr<sqlite3_changeset_iter, int (*)(sqlite3_changeset_iter*)>;

absl::StatusOr<IterPtr> StartIter(const std::string& changeset) {
  sqlite3_changeset_iter* raw = nullptr;
  const int rc = sqlite3changeset_start(&raw, static_cast<int>(changeset.size()),
                                        const_cast<char*>(changeset.data()));
  IterPtr iter(raw, sqlite3changeset_finalize);
  if (rc != SQLITE_OK) return SqliteStatus(nullptr, rc, "reading changeset");
  return iter;
}

// Calls visit(table name, iterator, column count, op) for each change, in
// order, until one returns an error, which it returns.
template <typename Visit>
absl::Status ForEachChange(const std::string& changeset, Visit visit) {
  absl::StatusOr<IterPtr> iter = StartIter(changeset);
  if (!iter.ok()) return iter.status();
  int rc;
  while ((rc = sqlite3changeset_next(iter->get())) == SQLITE_ROW) {
    const char* name = nullptr;
    int column_count = 0, op = 0, indirect = 0;
    sqlite3changeset_op(iter->get(), &name, &column_count, &op, &indirect);
    absl::Status status = visit(name, iter->get(), column_count, op);
    if (!status.ok()) return status;
  }
  if (rc != SQLITE_DONE) return SqliteStatus(nullptr, rc, "reading changeset");
  return absl::OkStatus();
}

absl::Status CheckAllShapes(const Schema& schema, const std::string& changeset) {
  return ForEachChange(
      changeset, [&](const char* name, sqlite3_changeset_iter* iter, int column_count, int /*op*/) {
        return CheckChangeShape(schema.Find(name), name, iter, column_count);
      });
}

// Turns triggers off for the apply and back on afterwards.
class TriggersOff final {
 public:
  explicit TriggersOff(sqlite3* db) : db_(db) {
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  }
  ~TriggersOff() { sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, nullptr); }
  TriggersOff(const TriggersOff&) = delete;
  TriggersOff& operator=(const TriggersOff&) = delete;

 private:
  sqlite3* db_;
};

struct ApplyContext {
  const Schema* schema;
  std::string error;  // the first refused conflict
};

bool ReceivesForeignKeyActions(const TableInfo* table) {
  if (table == nullptr) return false;
  return std::any_of(table->foreign_keys.begin(), table->foreign_keys.end(),
                     [](const ForeignKey& fk) { return fk.has_action; });
}

// "UPDATE on table t: row changed since the branch read it": a refused
// change of `op` as the session extension's conflict `type` names it.
std::string ConflictMessage(int op, absl::string_view table, int type) {
  const char* what = "conflict";
  switch (type) {
    case SQLITE_CHANGESET_DATA:
      what = "row changed since the branch read it";
      break;
    case SQLITE_CHANGESET_NOTFOUND:
      what = "row no longer exists";
      break;
    case SQLITE_CHANGESET_CONFLICT:
      what = "a row with the same primary key exists";
      break;
    case SQLITE_CHANGESET_CONSTRAINT:
      what = "a constraint fails";
      break;
  }
  const char* verb = op == SQLITE_INSERT ? "INSERT" : op == SQLITE_UPDATE ? "UPDATE" : "DELETE";
  return absl::StrCat(verb, " on table ", table, ": ", what);
}

// The value of key `column` that finds a change's row: the new one for an
// insert, the old one otherwise.
sqlite3_value* KeyValue(sqlite3_changeset_iter* iter, int op, int column) {
  sqlite3_value* value = nullptr;
  if (op == SQLITE_INSERT) {
    sqlite3changeset_new(iter, column, &value);
  } else {
    sqlite3changeset_old(iter, column, &value);
  }
  return value;
}

int OnConflict(void* context, int type, sqlite3_changeset_iter* iter) {
  auto* ctx = static_cast<ApplyContext*>(context);
  if (type == SQLITE_CHANGESET_FOREIGN_KEY) {
    if (ctx->error.empty()) ctx->error = "the changes violate a FOREIGN KEY constraint";
    return SQLITE_CHANGESET_ABORT;
  }
  const char* table = nullptr;
  int column_count = 0, op = 0, indirect = 0;
  sqlite3changeset_op(iter, &table, &column_count, &op, &indirect);
  // A parent's delete or update cascading to a child already did what the
  // child's own change in the changeset says: let the changeset's state win.
  if (ReceivesForeignKeyActions(ctx->schema->Find(table))) {
    if (type == SQLITE_CHANGESET_NOTFOUND && op == SQLITE_DELETE) return SQLITE_CHANGESET_OMIT;
    if (type == SQLITE_CHANGESET_DATA) return SQLITE_CHANGESET_REPLACE;
  }
  if (ctx->error.empty()) ctx->error = ConflictMessage(op, table, type);
  return SQLITE_CHANGESET_ABORT;
}

}  // namespace

absl::Status CheckChangeShape(const TableInfo* table, const char* name,
                              sqlite3_changeset_iter* iter, int column_count) {
  if (table == nullptr || table->kind != TableInfo::Kind::kTable ||
      static_cast<size_t>(column_count) != table->columns.size()) {
    return absl::InternalError(absl::StrCat("changeset does not match the schema of table ", name,
                                            " (changed since it was taken?)"));
  }
  unsigned char* pk_flags = nullptr;
  int pk_count = 0;
  sqlite3changeset_pk(iter, &pk_flags, &pk_count);
  std::vector<int> pk;
  for (int i = 0; i < pk_count; ++i) {
    if (pk_flags[i] != 0) pk.push_back(i);
  }
  std::vector<int> declared = table->primary_key.columns;
  std::sort(declared.begin(), declared.end());
  if (pk != declared) {
    return absl::InternalError(
        absl::StrCat("changeset's primary key of table ", name, " differs from the schema"));
  }
  return absl::OkStatus();
}

absl::Status CheckNoNullKeys(sqlite3* db, const Schema& schema,
                             const absl::flat_hash_set<std::string>& tables) {
  for (const std::string& name : tables) {
    const TableInfo* table = schema.Find(name);
    if (table == nullptr || !table->primary_key_nullable) continue;
    std::vector<std::string> nulls;
    for (int column : table->primary_key.columns) {
      nulls.push_back(absl::StrCat(QuoteIdentifier(table->columns[column].name), " IS NULL"));
    }
    absl::StatusOr<Statement> stmt =
        Statement::Prepare(db, absl::StrCat("SELECT 1 FROM main.", QuoteIdentifier(table->name),
                                            " WHERE ", absl::StrJoin(nulls, " OR "), " LIMIT 1"));
    if (!stmt.ok()) return stmt.status();
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_ROW) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", table->name,
          " has a row whose PRIMARY KEY is NULL: writes to it cannot be part of a distributed "
          "transaction (declare the key NOT NULL)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChangeRecorder>> ChangeRecorder::Start(sqlite3* db,
                                                                      const Schema* schema) {
  sqlite3_session* session = nullptr;
  int rc = sqlite3session_create(db, "main", &session);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, "creating session");
  std::unique_ptr<ChangeRecorder> recorder(new ChangeRecorder(db, session));
  sqlite3session_table_filter(session, &ChangeRecorder::Filter, const_cast<Schema*>(schema));
  rc = sqlite3session_attach(session, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, "attaching session");
  return recorder;
}

ChangeRecorder::~ChangeRecorder() { sqlite3session_delete(session_); }

int ChangeRecorder::Filter(void* schema, const char* table) {
  if (absl::StartsWithIgnoreCase(table, "_txcoord_")) return 0;
  return static_cast<const Schema*>(schema)->BranchWriteRefusal(table).empty() ? 1 : 0;
}

absl::StatusOr<std::string> ChangeRecorder::Changeset() {
  int size = 0;
  void* data = nullptr;
  const int rc = sqlite3session_changeset(session_, &size, &data);
  if (rc != SQLITE_OK) {
    sqlite3_free(data);
    return SqliteStatus(db_, rc, "taking changeset");
  }
  std::string changeset;
  if (size > 0) changeset.assign(static_cast<const char*>(data), size);
  sqlite3_free(data);
  return changeset;
}

namespace {

// `column` = ?N, or IS ?N where NULLs must match.
std::string Compare(const TableInfo& table, int column, bool is_key, int parameter) {
  return absl::StrCat(QuoteIdentifier(table.columns[column].name), is_key ? " = ?" : " IS ?",
                      parameter);
}

// Whether two different stored values of the table's primary key can never
// compare equal, and the session extension reads a key back as it stored
// it: BINARY collation, in the key's index and on the column (which `=`
// uses when an apply looks a row up), and INTEGER, TEXT or NUMERIC
// affinity. With NOCASE or RTRIM, or untyped, 'abc' and 'ABC', or 1 and
// 1.0, are two changes of a changeset but one row of the table; and a
// REAL key inserted as 1 reads back as 1.0 when the same branch updates
// it, two changes of one row again.
bool KeyComparesAsStored(const TableInfo& table) {
  const KeyColumns& key = table.primary_key;
  for (size_t k = 0; k < key.columns.size(); ++k) {
    const ColumnInfo& column = table.columns[key.columns[k]];
    if (column.affinity == Affinity::kBlob || column.affinity == Affinity::kReal ||
        !column.binary_collation) {
      return false;
    }
    if (k < key.collations.size() && key.collations[k] != Collation::kBinary) return false;
  }
  return true;
}

// Whether every change of `changeset` touches its own row alone, and
// whether it applies depends on that row alone: the schema declares no
// FOREIGN KEY (checked at the end of an apply, and acting on other rows),
// and every changed table matches its shape, has no UNIQUE constraint but
// its primary key (a value one change frees and another takes makes the
// order matter), and a primary key that compares as stored, which no
// UPDATE changes. With `without_triggers`, no changed table has a trigger
// either.
bool ChangesStandAlone(const Schema& schema, const std::string& changeset, bool without_triggers) {
  if (schema.HasForeignKeys()) return false;
  const absl::Status stands_alone = ForEachChange(
      changeset, [&](const char* name, sqlite3_changeset_iter* iter, int column_count, int op) {
        const absl::Status no = absl::FailedPreconditionError("depends on other rows");
        const TableInfo* table = schema.Find(name);
        if (table == nullptr || !CheckChangeShape(table, name, iter, column_count).ok() ||
            !table->unique_indexes.empty() || !KeyComparesAsStored(*table) ||
            (without_triggers && table->has_triggers)) {
          return no;
        }
        for (int column : table->primary_key.columns) {
          sqlite3_value* value = nullptr;
          if (op == SQLITE_UPDATE && sqlite3changeset_new(iter, column, &value) == SQLITE_OK &&
              value != nullptr) {
            return no;  // a key changed within an update: two keys of one row
          }
          // A real in an INTEGER or NUMERIC key: SQLite keeps -2^63 as a real
          // there, though it equals the integer -2^63.
          value = KeyValue(iter, op, column);
          if (value != nullptr && sqlite3_value_type(value) == SQLITE_FLOAT) return no;
        }
        return absl::OkStatus();
      });
  return stands_alone.ok();
}

}  // namespace

absl::Status ChangesetApplier::Apply(const Schema& schema, const std::string& changeset) {
  if (changeset.empty()) return absl::OkStatus();
  // A shape mismatch is left to ApplyChangeset to report.
  if (!ChangesStandAlone(schema, changeset, /*without_triggers=*/true)) {
    return ApplyChangeset(db_, schema, changeset);
  }
  TXCOORD_CHECK(sqlite3_get_autocommit(db_) == 0) << "a changeset applied outside a transaction";
  if (schema.version() != schema_version_) {
    statements_.Clear();
    schema_version_ = schema.version();
  }
  // The session extension sets a change that failed a constraint aside and
  // retries it after the table's other changes. Where changes stand alone
  // the retry fails again and is reported then, unless another of the
  // table's changes is refused first; the same happens here.
  std::string table_name;
  absl::Status set_aside_refusal;
  absl::Status status = ForEachChange(
      changeset, [&](const char* name, sqlite3_changeset_iter* iter, int /*column_count*/, int op) {
        if (!set_aside_refusal.ok() && !absl::EqualsIgnoreCase(name, table_name)) {
          return set_aside_refusal;
        }
        table_name = name;
        bool set_aside = false;
        absl::Status applied = ApplyChange(*schema.Find(name), iter, op, &set_aside);
        if (applied.ok() || !set_aside) return applied;
        if (set_aside_refusal.ok()) set_aside_refusal = applied;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return set_aside_refusal;
}

absl::Status ChangesetApplier::ApplyChange(const TableInfo& table, sqlite3_changeset_iter* iter,
                                           int op, bool* set_aside) {
  const int n = static_cast<int>(table.columns.size());
  unsigned char* pk_flags = nullptr;
  int pk_count = 0;
  sqlite3changeset_pk(iter, &pk_flags, &pk_count);
  // Old value of column i: parameter i + 1; new value: n + i + 1.
  std::vector<sqlite3_value*> old_values(n, nullptr), new_values(n, nullptr);
  for (int i = 0; i < n; ++i) {
    if (op != SQLITE_INSERT) sqlite3changeset_old(iter, i, &old_values[i]);
    if (op != SQLITE_DELETE) sqlite3changeset_new(iter, i, &new_values[i]);
  }
  const std::string name = absl::StrCat("main.", QuoteIdentifier(table.name));
  std::string sql;
  if (op == SQLITE_INSERT) {
    std::vector<std::string> columns, values;
    for (int i = 0; i < n; ++i) {
      columns.push_back(QuoteIdentifier(table.columns[i].name));
      values.push_back(absl::StrCat("?", n + i + 1));
    }
    sql = absl::StrCat("INSERT INTO ", name, "(", absl::StrJoin(columns, ", "), ") VALUES (",
                       absl::StrJoin(values, ", "), ")");
  } else {
    std::vector<std::string> where, sets;
    for (int i = 0; i < n; ++i) {
      if (old_values[i] != nullptr) where.push_back(Compare(table, i, pk_flags[i] != 0, i + 1));
      if (op == SQLITE_UPDATE && new_values[i] != nullptr) {
        sets.push_back(absl::StrCat(QuoteIdentifier(table.columns[i].name), " = ?", n + i + 1));
      }
    }
    const std::string condition = absl::StrJoin(where, " AND ");
    if (op == SQLITE_DELETE) {
      sql = absl::StrCat("DELETE FROM ", name, " WHERE ", condition);
    } else {
      // An update that changes nothing still must find its row.
      if (sets.empty()) {
        const int key = table.primary_key.columns[0];
        sets.push_back(Compare(table, key, true, key + 1));
      }
      sql = absl::StrCat("UPDATE ", name, " SET ", absl::StrJoin(sets, ", "), " WHERE ", condition);
    }
  }
  absl::StatusOr<Statement*> stmt = statements_.Get(sql);
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* raw = (*stmt)->get();
  for (int i = 0; i < n; ++i) {
    int rc = SQLITE_OK;
    if (old_values[i] != nullptr) rc = sqlite3_bind_value(raw, i + 1, old_values[i]);
    if (rc == SQLITE_OK && new_values[i] != nullptr) {
      rc = sqlite3_bind_value(raw, n + i + 1, new_values[i]);
    }
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "applying changeset");
  }
  const int rc = sqlite3_step(raw);
  sqlite3_reset(raw);
  if (rc == SQLITE_DONE) {
    if (op == SQLITE_INSERT || sqlite3_changes(db_) > 0) return absl::OkStatus();
    return Refused(table, iter, op, /*constraint_failed=*/false, set_aside);
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    return Refused(table, iter, op, /*constraint_failed=*/true, set_aside);
  }
  return SqliteStatus(db_, rc, "applying changeset");
}

absl::Status ChangesetApplier::Refused(const TableInfo& table, sqlite3_changeset_iter* iter, int op,
                                       bool constraint_failed, bool* set_aside) {
  // Whether a row with the change's primary key is there.
  std::vector<std::string> where;
  for (size_t k = 0; k < table.primary_key.columns.size(); ++k) {
    where.push_back(Compare(table, table.primary_key.columns[k], true, static_cast<int>(k) + 1));
  }
  absl::StatusOr<Statement*> stmt =
      statements_.Get(absl::StrCat("SELECT 1 FROM main.", QuoteIdentifier(table.name), " WHERE ",
                                   absl::StrJoin(where, " AND ")));
  if (!stmt.ok()) return stmt.status();
  for (size_t k = 0; k < table.primary_key.columns.size(); ++k) {
    sqlite3_bind_value((*stmt)->get(), static_cast<int>(k) + 1,
                       KeyValue(iter, op, table.primary_key.columns[k]));
  }
  absl::StatusOr<int> found = (*stmt)->Step();
  (*stmt)->Reset();
  if (!found.ok()) return found.status();
  const bool exists = *found == SQLITE_ROW;
  // As the session extension does: an update, or an insert of a key not
  // taken, that failed a constraint.
  *set_aside = constraint_failed && (op == SQLITE_UPDATE || (op == SQLITE_INSERT && !exists));
  int type = SQLITE_CHANGESET_CONSTRAINT;
  if (op == SQLITE_INSERT) {
    if (exists) type = SQLITE_CHANGESET_CONFLICT;
  } else if (!constraint_failed) {
    type = exists ? SQLITE_CHANGESET_DATA : SQLITE_CHANGESET_NOTFOUND;
  }
  // ApplyChangeset's words.
  return absl::AbortedError(
      absl::StrCat("applying changeset: ", ConflictMessage(op, table.name, type)));
}

bool AppliesAsRecorded(const Schema& schema, const std::string& changeset) {
  return ChangesStandAlone(schema, changeset, /*without_triggers=*/false);
}

absl::Status ApplyChangeset(sqlite3* db, const Schema& schema, const std::string& changeset) {
  if (changeset.empty()) return absl::OkStatus();
  // In autocommit each change would commit by itself, and a failed apply
  // would leave part of the changeset committed.
  TXCOORD_CHECK(sqlite3_get_autocommit(db) == 0) << "a changeset applied outside a transaction";
  absl::Status status = CheckAllShapes(schema, changeset);
  if (!status.ok()) return status;
  ApplyContext context{&schema, {}};
  TriggersOff triggers_off(db);
  // No savepoint of its own (two statements compiled and run per apply):
  // every caller rolls back the transaction or savepoint it runs in when
  // the apply fails.
  const int rc = sqlite3changeset_apply_v2(db, static_cast<int>(changeset.size()),
                                           const_cast<char*>(changeset.data()), nullptr, OnConflict,
                                           &context, /*ppRebase=*/nullptr, /*pnRebase=*/nullptr,
                                           SQLITE_CHANGESETAPPLY_NOSAVEPOINT);
  if (rc == SQLITE_OK) return absl::OkStatus();
  if (!context.error.empty()) {
    return absl::AbortedError(absl::StrCat("applying changeset: ", context.error));
  }
  return SqliteStatus(db, rc, "applying changeset");
}

}  // namespace txcoord::participant
