// Runs a batch of a service's SQL statements on the agent's connection:
// one statement per SqlStatement, typed parameters in, typed rows out, every
// statement judged by the authorizer, results capped. The caller owns the
// transaction around the batch.
#ifndef TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_
#define TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_

#include <sqlite3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sql_value.h"
#include "common/sqlite_db.h"
#include "participant/authorizer.h"

namespace txcoord::participant {

// What one run of a batch may return, and how long it may take.
struct ResultLimits {
  size_t max_rows_per_statement = 10000;
  size_t max_result_bytes = 16 << 20;  // over the whole batch
  // Over the whole batch; zero or less: no limit. The connection is the
  // agent's only one, so a run past this stalls every other call.
  absl::Duration max_run_time = absl::Seconds(10);
};

// The service's statements kept compiled across batches, by authorizer
// mode and SQL text, with the tables each writes: parsing a service's
// statement anew at every Execute was a sixth of the agent's CPU for it.
// SQLite asks the authorizer only when it compiles, so a kept statement
// carries what the authorizer learned then (a refused one is never kept,
// nor DDL or what follows DDL in its batch, nor text past
// kMaxKeptSqlBytes). SQLite compiles a kept statement again, under the
// authorizer, when the schema moved or a changeset apply expired it (its
// verdict is read after that first step); the owner also empties this
// when the schema's version moves (FollowSchema), as the authorizer's
// verdicts read the schema. The cap bounds the count and the text, not
// what a statement compiles to (a view's or a trigger's program). Holds at most `capacity`
// statements: one more drops them all. Not thread-safe: use it under the
// connection's lock, and destroy it before the connection closes.
class KeptStatements final {
 public:
  static constexpr size_t kMaxKeptSqlBytes = 4096;

  explicit KeptStatements(size_t capacity = 256) : capacity_(capacity) {}
  KeptStatements(const KeptStatements&) = delete;
  KeptStatements& operator=(const KeptStatements&) = delete;

  // Drops every statement if `schema_version` is not the one they were
  // compiled under.
  void FollowSchema(int64_t schema_version) {
    if (schema_version == schema_version_) return;
    Clear();
    schema_version_ = schema_version;
  }
  size_t size() const;

  // The statement kept for `sql` in `mode`, its writes noted with
  // `authorizer` (what compiling it would have told it); null if none is.
  // Valid until the next Keep, Forget or FollowSchema.
  Statement* Find(Authorizer::Mode mode, absl::string_view sql, Authorizer& authorizer);
  // Keeps `statement`, compiled from `sql` in `mode` and judged to write
  // `tables_written`; returns where it is kept.
  Statement* Keep(Authorizer::Mode mode, absl::string_view sql, Statement statement,
                  std::vector<std::string> tables_written);
  void Forget(Authorizer::Mode mode, absl::string_view sql) { ByMode(mode).erase(sql); }

 private:
  struct Kept {
    Statement statement;
    std::vector<std::string> tables_written;
  };
  // By SQL text, found by a string_view: no key is built to look one up.
  using Map = absl::node_hash_map<std::string, Kept>;
  Map& ByMode(Authorizer::Mode mode) { return by_mode_[static_cast<size_t>(mode)]; }
  void Clear() {
    for (Map& map : by_mode_) map.clear();
  }

  const size_t capacity_;
  int64_t schema_version_ = -1;
  std::array<Map, 3> by_mode_;  // one per Authorizer::Mode
};

// Runs `statements` in order and returns one result each. On the first
// failure returns its status, with SQLite's message prefixed by the index of
// the failing statement ("statements[1]: UNIQUE constraint failed: ..."):
// INVALID_ARGUMENT for bad SQL, parameters or constraints, PERMISSION_DENIED
// or INVALID_ARGUMENT for authorizer refusals, RESOURCE_EXHAUSTED past
// `limits` (max_run_time included: SQLite is interrupted), DEADLINE_EXCEEDED
// when interrupted at `call_deadline` (the caller's, if sooner). The caller
// must then roll back. Call under the connection's lock; no progress handler
// is left on `db` afterwards, so the caller's own SQL is never interrupted.
// `kept` (optional) keeps the statements compiled for the next batch.
absl::StatusOr<std::vector<SqlResult>> RunStatements(sqlite3* db, Authorizer& authorizer,
                                                     Authorizer::Mode mode,
                                                     const std::vector<SqlStatement>& statements,
                                                     const ResultLimits& limits,
                                                     absl::Time call_deadline,
                                                     KeptStatements* kept = nullptr);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_
