// Reads an agent's SQLite file directly, behind the agent's back, the way an
// auditor would: a separate read-only connection that sees only what is
// committed locally. Tests and the demo use it to check visibility,
// conservation of money and leftover prepared branches.
//
//   absl::StatusOr<int64_t> n = QueryInt64(db, "SELECT COUNT(*) FROM _txcoord_prepared");
#ifndef TXCOORD_HARNESS_SQLITE_INSPECT_H_
#define TXCOORD_HARNESS_SQLITE_INSPECT_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// Runs `sql` on a new read-only connection to `db_path` (never creating the
// file) and returns the first column of the first row as an integer; NULL
// reads as 0. NOT_FOUND if the query returns no row. Thread-safe.
// Every row's first column, as text, of `sql` on `db_path`.
absl::StatusOr<std::set<std::string>> QueryStrings(const std::string& db_path,
                                                   const std::string& sql);

absl::StatusOr<int64_t> QueryInt64(const std::string& db_path, const std::string& sql);

// QueryInt64 on each file, summed.
absl::StatusOr<int64_t> SumQueryInt64(const std::vector<std::string>& db_paths,
                                      const std::string& sql);

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_SQLITE_INSPECT_H_
