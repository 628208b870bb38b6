#include "participant/lock_keys.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/logging.h"
#include "common/sqlite_db.h"
#include "participant/changeset.h"

namespace txcoord::participant {
namespace {

// A row as far as it is known: nullopt for a column the changeset omits.
using Row = std::vector<std::optional<SqlValue>>;

std::string KeyPrefix(absl::string_view table, absl::string_view index) {
  const std::string t = absl::AsciiStrToLower(table);
  const std::string i = absl::AsciiStrToLower(index);
  return absl::StrCat(t.size(), ":", t, "|", i.size(), ":", i, "|");
}

std::string DescribeValue(const SqlValue& value) {
  constexpr size_t kMaxShown = 40;
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&value)) return absl::StrFormat("%g", *d);
  if (const auto* s = std::get_if<std::string>(&value)) {
    const bool cut = s->size() > kMaxShown;
    return absl::StrCat("'", absl::CHexEscape(s->substr(0, kMaxShown)), cut ? "...'" : "'");
  }
  if (const auto* b = std::get_if<Blob>(&value)) {
    const bool cut = b->bytes.size() > kMaxShown / 2;
    return absl::StrCat("x'", absl::BytesToHexString(b->bytes.substr(0, kMaxShown / 2)),
                        cut ? "...'" : "'");
  }
  return "NULL";
}

// Collects keys once each; a key wanted both shared and exclusive is
// exclusive. Ordered so that the result is deterministic.
class KeyCollector final {
 public:
  void Add(std::string key, std::string description, bool exclusive) {
    auto [it, inserted] = keys_.try_emplace(key, LockKey{key, std::move(description), exclusive});
    if (!inserted && exclusive) it->second.exclusive = true;
  }
  std::vector<LockKey> Take() {
    std::vector<LockKey> keys;
    keys.reserve(keys_.size());
    for (auto& [unused, key] : keys_) keys.push_back(std::move(key));
    return keys;
  }

 private:
  std::map<std::string, LockKey> keys_;
};

// Adds the key of `key_columns` in `row` unless a value is unknown or, for a
// UNIQUE index (`nulls_distinct`), NULL. `affinities` (optional) converts
// values first, as a parent column would see a child's value.
void AddKey(KeyCollector& keys, absl::string_view table, absl::string_view index,
            absl::string_view what, const std::vector<std::optional<SqlValue>>& values,
            const KeyColumns& key_columns, const std::vector<Affinity>* affinities,
            bool nulls_distinct, bool exclusive) {
  // Invariant: the values were picked by `key_columns` (Schema loads a
  // collation with every key column), and converted one affinity each.
  TXCOORD_CHECK(values.size() == key_columns.collations.size() &&
                (affinities == nullptr || affinities->size() == values.size()))
      << "key of " << table << " " << what << ": " << values.size() << " values for "
      << key_columns.collations.size() << " columns";
  std::string key = KeyPrefix(table, index);
  std::vector<std::string> shown;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].has_value()) return;
    SqlValue value = *values[i];
    if (nulls_distinct && std::holds_alternative<std::monostate>(value)) return;
    if (affinities != nullptr) value = ApplyAffinity(value, (*affinities)[i]);
    key += EncodeKeyValue(value, key_columns.collations[i]);
    shown.push_back(DescribeValue(value));
  }
  keys.Add(std::move(key), absl::StrCat(table, " ", what, " (", absl::StrJoin(shown, ", "), ")"),
           exclusive);
}

std::vector<std::optional<SqlValue>> Pick(const Row& row, const std::vector<int>& columns) {
  std::vector<std::optional<SqlValue>> values;
  for (int column : columns) {
    values.push_back(column >= 0 && column < static_cast<int>(row.size()) ? row[column]
                                                                          : std::nullopt);
  }
  return values;
}

// Shared lock on the parent key a foreign key of `row` points at.
void AddParentKey(KeyCollector& keys, const Schema& schema, const ForeignKey& fk, const Row& row) {
  const TableInfo* parent = schema.Find(fk.parent_table);
  if (parent == nullptr || parent->kind != TableInfo::Kind::kTable) return;
  // Parent column (index into parent's columns) of each child column.
  std::vector<int> referenced;
  if (fk.parent_columns.empty()) {
    referenced = parent->primary_key.columns;
  } else {
    for (const std::string& name : fk.parent_columns)
      referenced.push_back(parent->ColumnIndex(name));
  }
  if (referenced.size() != fk.child_columns.size()) return;  // SQLite rejects such writes

  auto same_set = [&referenced](const std::vector<int>& columns) {
    return columns.size() == referenced.size() &&
           std::is_permutation(columns.begin(), columns.end(), referenced.begin());
  };
  const KeyColumns* target = nullptr;
  std::string index_name;
  std::string what;
  if (!parent->primary_key.columns.empty() && same_set(parent->primary_key.columns)) {
    target = &parent->primary_key;
    what = "row";
  } else {
    for (const UniqueIndex& index : parent->unique_indexes) {
      if (!index.on_expressions && same_set(index.key.columns)) {
        target = &index.key;
        index_name = index.name;
        what = absl::StrCat("unique index ", index.name);
        break;
      }
    }
  }
  if (target == nullptr) return;  // SQLite reports "foreign key mismatch" itself

  std::vector<std::optional<SqlValue>> values;
  std::vector<Affinity> affinities;
  for (int parent_column : target->columns) {
    const size_t i =
        std::find(referenced.begin(), referenced.end(), parent_column) - referenced.begin();
    const int child_column = fk.child_columns[i];
    values.push_back(child_column >= 0 ? row[child_column] : std::nullopt);
    affinities.push_back(parent->columns[parent_column].affinity);
  }
  // A NULL in a child key means the constraint does not apply.
  AddKey(keys, parent->name, index_name, what, values, *target, &affinities,
         /*nulls_distinct=*/true, /*exclusive=*/false);
}

// Reads stored rows by primary key, one kept statement per table.
class RowReader final {
 public:
  // `statements` null: kept for this reader's life only.
  RowReader(sqlite3* db, StatementCache* statements)
      : own_(db), statements_(statements != nullptr ? statements : &own_) {}

  // nullopt if no row has that key.
  absl::StatusOr<std::optional<std::vector<SqlValue>>> Read(const TableInfo& table,
                                                            const Row& key_row) {
    std::vector<std::string> columns;
    for (const ColumnInfo& column : table.columns) columns.push_back(QuoteIdentifier(column.name));
    std::vector<std::string> where;
    for (size_t i = 0; i < table.primary_key.columns.size(); ++i) {
      where.push_back(absl::StrCat(
          QuoteIdentifier(table.columns[table.primary_key.columns[i]].name), " = ?", i + 1));
    }
    absl::StatusOr<Statement*> stmt = statements_->Get(
        absl::StrCat("SELECT ", absl::StrJoin(columns, ", "), " FROM main.",
                     QuoteIdentifier(table.name), " WHERE ", absl::StrJoin(where, " AND ")));
    if (!stmt.ok()) return stmt.status();
    Statement& read = **stmt;
    for (size_t i = 0; i < table.primary_key.columns.size(); ++i) {
      const std::optional<SqlValue>& value = key_row[table.primary_key.columns[i]];
      absl::Status status = read.Bind(static_cast<int>(i + 1), value.value_or(std::monostate{}));
      if (!status.ok()) return status;
    }
    absl::StatusOr<int> rc = read.Step();
    if (!rc.ok()) return rc.status();
    std::optional<std::vector<SqlValue>> row;
    if (*rc == SQLITE_ROW) {
      row.emplace();
      for (size_t i = 0; i < table.columns.size(); ++i) {
        row->push_back(read.Column(static_cast<int>(i)));
      }
    }
    read.Reset();
    return row;
  }

 private:
  StatementCache own_;
  StatementCache* const statements_;
};

}  // namespace

std::string EncodeKeyValue(const SqlValue& value, Collation collation) {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat("i", *i, ";");
  if (const auto* d = std::get_if<double>(&value)) {
    // SQLite compares 1.0 and 1 as equal: a whole real within int64's range
    // [-2^63, 2^63) is the integer it equals.
    if (std::isfinite(*d) && *d == std::trunc(*d) && *d >= -0x1p63 && *d < 0x1p63) {
      return absl::StrCat("i", static_cast<int64_t>(*d), ";");
    }
    return absl::StrCat("r", absl::StrFormat("%.17g", *d), ";");
  }
  if (const auto* s = std::get_if<std::string>(&value)) {
    std::string text = *s;
    if (collation == Collation::kNoCase) absl::AsciiStrToLower(&text);  // NOCASE folds ASCII only
    if (collation == Collation::kRtrim) {
      while (!text.empty() && text.back() == ' ') text.pop_back();
    }
    return absl::StrCat("t", text.size(), ":", text);
  }
  if (const auto* b = std::get_if<Blob>(&value))
    return absl::StrCat("b", b->bytes.size(), ":", b->bytes);
  return "n;";
}

SqlValue ApplyAffinity(const SqlValue& value, Affinity affinity) {
  switch (affinity) {
    case Affinity::kBlob:
      return value;
    case Affinity::kText:
      if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
      if (const auto* d = std::get_if<double>(&value)) {
        std::string text = absl::StrFormat("%.15g", *d);
        if (text.find_first_of(".eni") == std::string::npos) text += ".0";
        return text;
      }
      return value;
    case Affinity::kInteger:
    case Affinity::kReal:
    case Affinity::kNumeric: {
      const auto* s = std::get_if<std::string>(&value);
      if (s == nullptr) return value;
      const absl::string_view text = absl::StripAsciiWhitespace(*s);
      int64_t i = 0;
      if (absl::SimpleAtoi(text, &i)) return i;
      double d = 0;
      if (!text.empty() && absl::SimpleAtod(text, &d) && std::isfinite(d)) return d;
      return value;
    }
  }
  return value;
}

absl::StatusOr<std::vector<LockKey>> LockKeysForChangeset(sqlite3* db, const Schema& schema,
                                                          const std::string& changeset,
                                                          const std::string& txid,
                                                          StatementCache* statements) {
  KeyCollector keys;
  if (changeset.empty()) return keys.Take();
  sqlite3_changeset_iter* raw = nullptr;
  int rc = sqlite3changeset_start(&raw, static_cast<int>(changeset.size()),
                                  const_cast<char*>(changeset.data()));
  if (rc != SQLITE_OK) return SqliteStatus(nullptr, rc, "reading changeset");
  std::unique_ptr<sqlite3_changeset_iter, int (*)(sqlite3_changeset_iter*)> iter(
      raw, sqlite3changeset_finalize);
  RowReader reader(db, statements);
  while ((rc = sqlite3changeset_next(iter.get())) == SQLITE_ROW) {
    const char* name = nullptr;
    int column_count = 0, op = 0, indirect = 0;
    sqlite3changeset_op(iter.get(), &name, &column_count, &op, &indirect);
    const TableInfo* table = schema.Find(name);
    absl::Status status = CheckChangeShape(table, name, iter.get(), column_count);
    if (!status.ok()) return status;

    Row old_row(column_count), new_row(column_count);
    for (int i = 0; i < column_count; ++i) {
      sqlite3_value* value = nullptr;
      if (op != SQLITE_INSERT && sqlite3changeset_old(iter.get(), i, &value) == SQLITE_OK &&
          value != nullptr) {
        old_row[i] = ValueFromSqlite(value);
      }
      value = nullptr;
      if (op != SQLITE_DELETE && sqlite3changeset_new(iter.get(), i, &value) == SQLITE_OK &&
          value != nullptr) {
        new_row[i] = ValueFromSqlite(value);
      }
    }
    if (op == SQLITE_UPDATE) {
      // Unchanged columns are equal before and after, so the stored row
      // (committed, or as updated) completes both images.
      absl::StatusOr<std::optional<std::vector<SqlValue>>> stored = reader.Read(*table, old_row);
      if (!stored.ok()) return stored.status();
      if (stored->has_value()) {
        for (int i = 0; i < column_count; ++i) {
          if (!old_row[i].has_value()) old_row[i] = (**stored)[i];
        }
      } else {
        // Changed outside the agent: the apply will fail and vote NO, so the
        // keys of the unknown columns do not matter.
        TXLOG(WARNING) << (txid.empty() ? std::string("local batch:") : "txid=" + txid)
                       << " row of table " << table->name
                       << " updated in a changeset is missing from the database";
      }
      for (int i = 0; i < column_count; ++i) {
        if (!new_row[i].has_value()) new_row[i] = old_row[i];
      }
    }

    const Row& key_row = op == SQLITE_INSERT ? new_row : old_row;
    AddKey(keys, table->name, "", "row", Pick(key_row, table->primary_key.columns),
           table->primary_key, nullptr, /*nulls_distinct=*/false, /*exclusive=*/true);
    std::vector<const Row*> images;
    if (op != SQLITE_INSERT) images.push_back(&old_row);
    if (op != SQLITE_DELETE) images.push_back(&new_row);
    for (const UniqueIndex& index : table->unique_indexes) {
      const std::string what = absl::StrCat("unique index ", index.name);
      if (index.on_expressions) {
        keys.Add(KeyPrefix(table->name, index.name) + "*",
                 absl::StrCat(table->name, " ", what, " (any value)"), /*exclusive=*/true);
        continue;
      }
      for (const Row* image : images) {
        AddKey(keys, table->name, index.name, what, Pick(*image, index.key.columns), index.key,
               nullptr, /*nulls_distinct=*/true, /*exclusive=*/true);
      }
    }
    if (op != SQLITE_DELETE) {
      for (const ForeignKey& fk : table->foreign_keys) AddParentKey(keys, schema, fk, new_row);
    }
  }
  if (rc != SQLITE_DONE) return SqliteStatus(nullptr, rc, "reading changeset");
  return keys.Take();
}

}  // namespace txcoord::participant
