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
#include "common/sql_value.h"
#include "participant/authorizer.h"

namespace txcoord::participant {

struct ResultLimits {
  size_t max_rows_per_statement = 10000;
  size_t max_result_bytes = 16 << 20;  // over the whole batch
};

// Runs `statements` in order and returns one result each. On the first
// failure returns its status, with SQLite's message prefixed by the index of
// the failing statement ("statements[1]: UNIQUE constraint failed: ..."):
// INVALID_ARGUMENT for bad SQL, parameters or constraints, PERMISSION_DENIED
// or INVALID_ARGUMENT for authorizer refusals, RESOURCE_EXHAUSTED past
// `limits`. The caller must then roll back. Call under the connection's lock.
absl::StatusOr<std::vector<SqlResult>> RunStatements(sqlite3* db, Authorizer& authorizer,
                                                     Authorizer::Mode mode,
                                                     const std::vector<SqlStatement>& statements,
                                                     const ResultLimits& limits);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_STATEMENT_RUNNER_H_
