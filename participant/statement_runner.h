// Runs a batch of a service's SQL statements on the agent's connection:
// one statement per SqlStatement, typed parameters in, typed rows out, every
// statement judged by the authorizer, results capped. The caller owns the
// transaction around the batch.
#ifndef TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_
#define TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_

#include <sqlite3.h>

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/sql_value.h"
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

// Runs `statements` in order and returns one result each. On the first
// failure returns its status, with SQLite's message prefixed by the index of
// the failing statement ("statements[1]: UNIQUE constraint failed: ..."):
// INVALID_ARGUMENT for bad SQL, parameters or constraints, PERMISSION_DENIED
// or INVALID_ARGUMENT for authorizer refusals, RESOURCE_EXHAUSTED past
// `limits` (max_run_time included: SQLite is interrupted), DEADLINE_EXCEEDED
// when interrupted at `call_deadline` (the caller's, if sooner). The caller
// must then roll back. Call under the connection's lock; no progress handler
// is left on `db` afterwards, so the caller's own SQL is never interrupted.
absl::StatusOr<std::vector<SqlResult>> RunStatements(sqlite3* db, Authorizer& authorizer,
                                                     Authorizer::Mode mode,
                                                     const std::vector<SqlStatement>& statements,
                                                     const ResultLimits& limits,
                                                     absl::Time call_deadline);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_
