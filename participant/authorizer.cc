#include "participant/authorizer.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace txcoord::participant {
namespace {

bool IsInternalName(const char* name) {
  return name != nullptr && absl::StartsWithIgnoreCase(name, "_txcoord_");
}

// Introspection pragmas that may name a table or index and change nothing.
bool IsIntrospectionPragma(const std::string& pragma) {
  static const auto* const kAllowed = new absl::flat_hash_set<std::string>{
      "table_info",    "table_xinfo",      "table_list",        "index_list",     "index_info",
      "index_xinfo",   "foreign_key_list", "foreign_key_check", "collation_list", "compile_options",
      "function_list", "module_list",      "pragma_list",       "encoding",       "page_size",
      "page_count",    "freelist_count",   "data_version"};
  return kAllowed->contains(pragma);
}

// Pragmas that are harmless to read but would change state if assigned.
bool IsReadOnlyUnlessAssigned(const std::string& pragma) {
  return pragma == "user_version" || pragma == "schema_version" || pragma == "application_id" ||
         pragma == "foreign_keys" || pragma == "synchronous" || pragma == "journal_mode";
}

bool IsDdl(int action) {
  switch (action) {
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE:
    case SQLITE_ALTER_TABLE:
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
      return true;
    default:
      return false;
  }
}

bool IsTempDdl(int action) {
  switch (action) {
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
      return true;
    default:
      return false;
  }
}

}  // namespace

void Authorizer::Install(sqlite3* db) { sqlite3_set_authorizer(db, &Authorizer::Callback, this); }

void Authorizer::BeginStatement(Mode mode) {
  mode_ = mode;
  denial_ = absl::OkStatus();
  sqlite_table_written_.clear();
  statement_is_ddl_ = false;
  statement_tables_written_.clear();
}

void Authorizer::EndStatement() { mode_ = Mode::kInternal; }

absl::Status Authorizer::Verdict() const {
  if (!denial_.ok()) return denial_;
  // DDL legitimately rewrites sqlite_schema; nothing else may touch SQLite's
  // own tables.
  if (!sqlite_table_written_.empty() && !statement_is_ddl_) {
    return absl::PermissionDeniedError(
        absl::StrCat("writing SQLite's internal table ", sqlite_table_written_, " is not allowed"));
  }
  return absl::OkStatus();
}

int Authorizer::Callback(void* self, int action, const char* arg1, const char* arg2,
                         const char* database, const char* trigger) {
  return static_cast<Authorizer*>(self)->Decide(action, arg1, arg2, database);
}

int Authorizer::Deny(absl::StatusCode code, std::string message) {
  if (denial_.ok()) denial_ = absl::Status(code, std::move(message));
  return SQLITE_DENY;
}

int Authorizer::Decide(int action, const char* arg1, const char* arg2, const char* database) {
  if (mode_ == Mode::kInternal) return SQLITE_OK;
  const bool names_table_first = action == SQLITE_READ || action == SQLITE_INSERT ||
                                 action == SQLITE_UPDATE || action == SQLITE_DELETE;
  const bool hidden = names_table_first           ? IsInternalName(arg1)
                      : action == SQLITE_FUNCTION ? false
                                                  : IsInternalName(arg1) || IsInternalName(arg2);
  if (hidden) {
    return Deny(absl::StatusCode::kPermissionDenied,
                absl::StrCat("access to the agent's internal table ",
                             IsInternalName(arg1) ? arg1 : arg2, " is not allowed"));
  }
  if (IsTempDdl(action)) {
    return Deny(absl::StatusCode::kInvalidArgument,
                "temporary tables, indexes, views and triggers are not allowed: the agent's "
                "connection is shared by all callers");
  }
  if (IsDdl(action)) {
    if (mode_ == Mode::kBranch) {
      return Deny(absl::StatusCode::kInvalidArgument,
                  "DDL is not allowed inside a distributed transaction branch; run schema "
                  "changes without a txid");
    }
    statement_is_ddl_ = true;
    batch_had_ddl_ = true;
    return SQLITE_OK;
  }
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return Deny(absl::StatusCode::kPermissionDenied, "ATTACH and DETACH are not allowed");
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return Deny(absl::StatusCode::kInvalidArgument,
                  "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is not allowed: the "
                  "agent runs each batch in a transaction of its own");
    case SQLITE_FUNCTION:
      if (arg2 != nullptr && absl::EqualsIgnoreCase(arg2, "load_extension")) {
        return Deny(absl::StatusCode::kPermissionDenied, "load_extension() is not allowed");
      }
      return SQLITE_OK;
    case SQLITE_PRAGMA: {
      const std::string pragma = absl::AsciiStrToLower(arg1 != nullptr ? arg1 : "");
      if (IsIntrospectionPragma(pragma) || (IsReadOnlyUnlessAssigned(pragma) && arg2 == nullptr)) {
        return SQLITE_OK;
      }
      return Deny(absl::StatusCode::kPermissionDenied,
                  absl::StrCat("PRAGMA ", pragma, arg2 != nullptr ? " with a value" : "",
                               " is not allowed; only read-only introspection pragmas are"));
    }
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE: {
      const char* table = arg1 != nullptr ? arg1 : "";
      if (absl::StartsWithIgnoreCase(table, "sqlite_")) {
        if (sqlite_table_written_.empty()) sqlite_table_written_ = table;
        return SQLITE_OK;
      }
      if (mode_ == Mode::kBranch) {
        if (database != nullptr && !absl::EqualsIgnoreCase(database, "main")) {
          return Deny(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("table ", table,
                                   " is not in the main database: writes to it "
                                   "cannot be part of a distributed transaction"));
        }
        std::string refusal = schema_->BranchWriteRefusal(table);
        if (!refusal.empty()) return Deny(absl::StatusCode::kInvalidArgument, std::move(refusal));
      }
      tables_written_.insert(table);
      if (std::find(statement_tables_written_.begin(), statement_tables_written_.end(), table) ==
          statement_tables_written_.end()) {
        statement_tables_written_.push_back(table);
      }
      return SQLITE_OK;
    }
    default:
      return SQLITE_OK;
  }
}

}  // namespace txcoord::participant
