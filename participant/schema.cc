#include "participant/schema.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {
namespace {

// The one row of `sql` about `table` (bound to ?1), as integers.
absl::StatusOr<std::vector<int64_t>> RowAbout(sqlite3* db, const char* sql,
                                              const std::string& table, int columns) {
  absl::StatusOr<Statement> stmt = Statement::Prepare(db, sql);
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->Bind(1, table);
  if (!status.ok()) return status;
  absl::StatusOr<int> rc = stmt->Step();
  if (!rc.ok()) return rc.status();
  std::vector<int64_t> row(columns, 0);
  if (*rc == SQLITE_ROW) {
    for (int i = 0; i < columns; ++i) row[i] = stmt->ColumnInt(i);
  }
  return row;
}

absl::Status LoadColumns(sqlite3* db, TableInfo& table, std::vector<int>& by_cid) {
  // wr: WITHOUT ROWID, which refuses NULL keys itself; strict: STRICT, where
  // a column declared ANY keeps every value as given (BLOB affinity).
  absl::StatusOr<std::vector<int64_t>> kind = RowAbout(
      db, "SELECT wr, strict FROM pragma_table_list(?1) WHERE schema = 'main'", table.name, 2);
  if (!kind.ok()) return kind.status();
  const bool without_rowid = (*kind)[0] != 0, strict = (*kind)[1] != 0;
  absl::StatusOr<Statement> stmt = Statement::Prepare(
      db, "SELECT name, type, pk, hidden, \"notnull\" FROM pragma_table_xinfo(?1)");
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->Bind(1, table.name);
  if (!status.ok()) return status;
  std::vector<std::pair<int, int>> pk_positions;  // (position in PK, column)
  bool pk_integer = false;
  bool pk_nullable = false;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) break;
    const int64_t hidden = stmt->ColumnInt(3);
    if (hidden != 0) {
      // 2 and 3 are generated columns; 1 is a virtual table's hidden column.
      if (hidden >= 2) table.has_generated_columns = true;
      by_cid.push_back(-1);
      continue;
    }
    const int index = static_cast<int>(table.columns.size());
    by_cid.push_back(index);
    const std::string name = stmt->ColumnText(0);
    const char* collation = nullptr;
    if (const int rc =
            sqlite3_table_column_metadata(db, "main", table.name.c_str(), name.c_str(), nullptr,
                                          &collation, nullptr, nullptr, nullptr);
        rc != SQLITE_OK) {
      return SqliteStatus(db, rc, absl::StrCat("reading column ", name));
    }
    const std::string type = stmt->ColumnText(1);
    table.columns.push_back({name,
                             strict && absl::EqualsIgnoreCase(type, "ANY")
                                 ? Affinity::kBlob
                                 : AffinityOfDeclaredType(type),
                             collation == nullptr || absl::EqualsIgnoreCase(collation, "BINARY")});
    if (const int64_t pk = stmt->ColumnInt(2); pk > 0) {
      pk_positions.emplace_back(static_cast<int>(pk), index);
      pk_integer = absl::EqualsIgnoreCase(stmt->ColumnText(1), "INTEGER");
      if (stmt->ColumnInt(4) == 0) pk_nullable = true;
    }
  }
  std::sort(pk_positions.begin(), pk_positions.end());
  if (pk_nullable && !without_rowid) {
    // A lone INTEGER PRIMARY KEY is the rowid, never NULL, unless it has an
    // index of its own (INTEGER PRIMARY KEY DESC, an old SQLite quirk).
    bool rowid_alias = false;
    if (pk_positions.size() == 1 && pk_integer) {
      absl::StatusOr<std::vector<int64_t>> key_indexes = RowAbout(
          db, "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'", table.name, 1);
      if (!key_indexes.ok()) return key_indexes.status();
      rowid_alias = (*key_indexes)[0] == 0;
    }
    table.primary_key_nullable = !rowid_alias;
  }
  for (const auto& [position, column] : pk_positions) {
    table.primary_key.columns.push_back(column);
    table.primary_key.collations.push_back(Collation::kBinary);
  }
  return absl::OkStatus();
}

// Reads one index's key columns; false in `*plain` if any is an expression.
absl::Status LoadIndexKey(sqlite3* db, const std::string& index, const std::vector<int>& by_cid,
                          KeyColumns& key, bool* plain) {
  absl::StatusOr<Statement> stmt =
      Statement::Prepare(db, "SELECT cid, coll FROM pragma_index_xinfo(?1) WHERE key = 1");
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->Bind(1, index);
  if (!status.ok()) return status;
  *plain = true;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return absl::OkStatus();
    const int64_t cid = stmt->ColumnInt(0);
    const int column = cid >= 0 && cid < static_cast<int64_t>(by_cid.size()) ? by_cid[cid] : -1;
    if (column < 0) *plain = false;
    key.columns.push_back(column);
    key.collations.push_back(ParseCollation(stmt->ColumnText(1)));
  }
}

absl::Status LoadIndexes(sqlite3* db, TableInfo& table, const std::vector<int>& by_cid) {
  absl::StatusOr<Statement> stmt = Statement::Prepare(
      db, "SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY name");
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->Bind(1, table.name);
  if (!status.ok()) return status;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return absl::OkStatus();
    if (stmt->ColumnInt(1) == 0) continue;
    const std::string name = stmt->ColumnText(0);
    KeyColumns key;
    bool plain = true;
    status = LoadIndexKey(db, name, by_cid, key, &plain);
    if (!status.ok()) return status;
    if (stmt->ColumnText(2) == "pk") {
      // The index behind a non-INTEGER primary key carries its collations.
      if (key.columns == table.primary_key.columns) table.primary_key.collations = key.collations;
      continue;
    }
    table.unique_indexes.push_back({name, std::move(key), !plain});
  }
}

absl::Status LoadForeignKeys(sqlite3* db, TableInfo& table) {
  absl::StatusOr<Statement> stmt =
      Statement::Prepare(db,
                         "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete "
                         "FROM pragma_foreign_key_list(?1) ORDER BY id, seq");
  if (!stmt.ok()) return stmt.status();
  absl::Status status = stmt->Bind(1, table.name);
  if (!status.ok()) return status;
  int64_t current_id = -1;
  bool has_parent_columns = true;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) break;
    if (stmt->ColumnInt(0) != current_id) {
      current_id = stmt->ColumnInt(0);
      table.foreign_keys.emplace_back();
      table.foreign_keys.back().parent_table = stmt->ColumnText(1);
      has_parent_columns = true;
    }
    ForeignKey& fk = table.foreign_keys.back();
    fk.child_columns.push_back(table.ColumnIndex(stmt->ColumnText(2)));
    if (sqlite3_column_type(stmt->get(), 3) == SQLITE_NULL) has_parent_columns = false;
    if (has_parent_columns) {
      fk.parent_columns.push_back(stmt->ColumnText(3));
    } else {
      fk.parent_columns.clear();
    }
    for (int action_column : {4, 5}) {
      const std::string action = absl::AsciiStrToUpper(stmt->ColumnText(action_column));
      if (action != "NO ACTION" && action != "RESTRICT") fk.has_action = true;
    }
  }
  return absl::OkStatus();
}

}  // namespace

Affinity AffinityOfDeclaredType(absl::string_view declared_type) {
  const std::string type = absl::AsciiStrToUpper(declared_type);
  if (absl::StrContains(type, "INT")) return Affinity::kInteger;
  if (absl::StrContains(type, "CHAR") || absl::StrContains(type, "CLOB") ||
      absl::StrContains(type, "TEXT")) {
    return Affinity::kText;
  }
  if (type.empty() || absl::StrContains(type, "BLOB")) return Affinity::kBlob;
  if (absl::StrContains(type, "REAL") || absl::StrContains(type, "FLOA") ||
      absl::StrContains(type, "DOUB")) {
    return Affinity::kReal;
  }
  return Affinity::kNumeric;
}

Collation ParseCollation(absl::string_view name) {
  if (absl::EqualsIgnoreCase(name, "NOCASE")) return Collation::kNoCase;
  if (absl::EqualsIgnoreCase(name, "RTRIM")) return Collation::kRtrim;
  return Collation::kBinary;
}

int TableInfo::ColumnIndex(absl::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (absl::EqualsIgnoreCase(columns[i].name, column)) return static_cast<int>(i);
  }
  return -1;
}

absl::Status Schema::Refresh(sqlite3* db, StatementCache* statements) {
  std::optional<StatementCache> own;  // only for a caller without a cache
  if (statements == nullptr) statements = &own.emplace(db);
  absl::StatusOr<Statement*> stmt = statements->Get("PRAGMA schema_version");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<int> rc = (*stmt)->Step();
  if (!rc.ok()) return rc.status();
  const int64_t version = (*stmt)->ColumnInt(0);
  (*stmt)->Reset();
  if (version == version_) return absl::OkStatus();
  absl::Status status = Load(db);
  if (!status.ok()) {
    tables_.clear();
    version_ = -1;
    return status;
  }
  version_ = version;
  return absl::OkStatus();
}

absl::Status Schema::Load(sqlite3* db) {
  tables_.clear();
  has_foreign_keys_ = false;
  absl::StatusOr<Statement> stmt = Statement::Prepare(
      db,
      "SELECT name, type, sql FROM main.sqlite_schema "
      "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
  if (!stmt.ok()) return stmt.status();
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return LoadTriggers(db);
    TableInfo table;
    table.name = stmt->ColumnText(0);
    if (stmt->ColumnText(1) == "view") {
      table.kind = TableInfo::Kind::kView;
    } else if (absl::StartsWithIgnoreCase(stmt->ColumnText(2), "CREATE VIRTUAL")) {
      table.kind = TableInfo::Kind::kVirtual;
    }
    if (table.kind == TableInfo::Kind::kTable) {
      std::vector<int> by_cid;
      absl::Status status = LoadColumns(db, table, by_cid);
      if (status.ok()) status = LoadIndexes(db, table, by_cid);
      if (status.ok()) status = LoadForeignKeys(db, table);
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrCat("reading schema of table ", table.name,
                                                        ": ", status.message()));
      }
    }
    has_foreign_keys_ = has_foreign_keys_ || !table.foreign_keys.empty();
    std::string key = absl::AsciiStrToLower(table.name);
    tables_.emplace(std::move(key), std::move(table));
  }
}

absl::Status Schema::LoadTriggers(sqlite3* db) {
  absl::StatusOr<Statement> stmt = Statement::Prepare(
      db, "SELECT DISTINCT tbl_name FROM main.sqlite_schema WHERE type = 'trigger'");
  if (!stmt.ok()) return stmt.status();
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return absl::OkStatus();
    auto it = tables_.find(absl::AsciiStrToLower(stmt->ColumnText(0)));
    if (it != tables_.end()) it->second.has_triggers = true;
  }
}

const TableInfo* Schema::Find(absl::string_view table) const {
  auto it = tables_.find(absl::AsciiStrToLower(table));
  return it == tables_.end() ? nullptr : &it->second;
}

std::string Schema::BranchWriteRefusal(absl::string_view table) const {
  const TableInfo* info = Find(table);
  if (info == nullptr) {
    return absl::StrCat("table ", table,
                        " is not a table of the main database: writes to it cannot be part of a "
                        "distributed transaction");
  }
  switch (info->kind) {
    case TableInfo::Kind::kView:
      return std::string();  // its INSTEAD OF triggers are checked on their own
    case TableInfo::Kind::kVirtual:
      return absl::StrCat("table ", info->name,
                          " is a virtual table: writes to it cannot be part of a distributed "
                          "transaction");
    case TableInfo::Kind::kTable:
      break;
  }
  if (info->primary_key.columns.empty()) {
    return absl::StrCat("table ", info->name,
                        " has no PRIMARY KEY: writes to it cannot be part of a distributed "
                        "transaction");
  }
  if (info->has_generated_columns) {
    return absl::StrCat("table ", info->name,
                        " has generated columns, which SQLite's session extension cannot "
                        "record: writes to it cannot be part of a distributed transaction");
  }
  return std::string();
}

}  // namespace txcoord::participant
