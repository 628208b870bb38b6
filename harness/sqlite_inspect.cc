#include "harness/sqlite_inspect.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace txcoord::testing {
namespace {

// How long a read waits on a lock: in WAL mode only recovery or a
// concurrent checkpoint's brief exclusive moments block a reader.
constexpr int kBusyTimeoutMs = 10000;

// A read-only connection of its own, or why not.
absl::StatusOr<sqlite3*> OpenReadOnly(const std::string& db_path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path, " read-only: ", message));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return db;
}

}  // namespace

absl::StatusOr<std::set<std::string>> QueryStrings(const std::string& db_path,
                                                   const std::string& sql) {
  absl::StatusOr<sqlite3*> db = OpenReadOnly(db_path);
  if (!db.ok()) return db.status();
  sqlite3_stmt* statement = nullptr;
  int rc = sqlite3_prepare_v2(*db, sql.c_str(), static_cast<int>(sql.size()), &statement, nullptr);
  std::set<std::string> values;
  absl::Status status;
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 0);
      values.insert(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
  }
  if (rc != SQLITE_DONE) {
    status = absl::UnavailableError(absl::StrCat(db_path, ": ", sql, ": ", sqlite3_errmsg(*db)));
  }
  sqlite3_finalize(statement);
  sqlite3_close(*db);
  if (!status.ok()) return status;
  return values;
}

absl::StatusOr<int64_t> QueryInt64(const std::string& db_path, const std::string& sql) {
  absl::StatusOr<sqlite3*> opened = OpenReadOnly(db_path);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  sqlite3_stmt* statement = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &statement, nullptr);
  absl::StatusOr<int64_t> result;
  if (rc != SQLITE_OK) {
    result = absl::InvalidArgumentError(absl::StrCat(db_path, ": ", sql, ": ", sqlite3_errmsg(db)));
  } else {
    rc = sqlite3_step(statement);
    if (rc == SQLITE_ROW) {
      result = sqlite3_column_int64(statement, 0);
    } else if (rc == SQLITE_DONE) {
      result = absl::NotFoundError(absl::StrCat(db_path, ": ", sql, ": no row"));
    } else {
      result = absl::UnavailableError(absl::StrCat(db_path, ": ", sql, ": ", sqlite3_errmsg(db)));
    }
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return result;
}

absl::StatusOr<int64_t> SumQueryInt64(const std::vector<std::string>& db_paths,
                                      const std::string& sql) {
  int64_t sum = 0;
  for (const std::string& path : db_paths) {
    absl::StatusOr<int64_t> value = QueryInt64(path, sql);
    if (!value.ok()) return value.status();
    sum += *value;
  }
  return sum;
}

}  // namespace txcoord::testing
