#include "participant/changeset.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

absl::Status CheckAllShapes(const Schema& schema, const std::string& changeset) {
  absl::StatusOr<IterPtr> iter = StartIter(changeset);
  if (!iter.ok()) return iter.status();
  int rc;
  while ((rc = sqlite3changeset_next(iter->get())) == SQLITE_ROW) {
    const char* name = nullptr;
    int column_count = 0, op = 0, indirect = 0;
    sqlite3changeset_op(iter->get(), &name, &column_count, &op, &indirect);
    absl::Status status = CheckChangeShape(schema.Find(name), name, iter->get(), column_count);
    if (!status.ok()) return status;
  }
  if (rc != SQLITE_DONE) return SqliteStatus(nullptr, rc, "reading changeset");
  return absl::OkStatus();
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
  if (ctx->error.empty()) {
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
    ctx->error = absl::StrCat(verb, " on table ", table, ": ", what);
  }
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

bool AppliesAsRecorded(const Schema& schema, const std::string& changeset) {
  if (schema.HasForeignKeys()) return false;
  absl::StatusOr<IterPtr> iter = StartIter(changeset);
  if (!iter.ok()) return false;
  int rc;
  while ((rc = sqlite3changeset_next(iter->get())) == SQLITE_ROW) {
    const char* name = nullptr;
    int column_count = 0, op = 0, indirect = 0;
    sqlite3changeset_op(iter->get(), &name, &column_count, &op, &indirect);
    const TableInfo* table = schema.Find(name);
    if (table == nullptr || !table->unique_indexes.empty()) return false;
  }
  return rc == SQLITE_DONE;
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
