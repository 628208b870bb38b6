// The agent's own tables inside the service's database: prepared branches
// (the durable half of a YES vote), one-phase outcomes (so that a retried
// CommitOnePhase answers the same) and heuristic decisions (an operator
// forced a branch's outcome; kept to compare with the coordinator's). Hidden from service SQL by
// the authorizer; every function here runs internal SQL on the caller's transaction, under the
// connection's lock.
#ifndef TXCOORD_PARTICIPANT_INTERNAL_TABLES_H_
#define TXCOORD_PARTICIPANT_INTERNAL_TABLES_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/sqlite_db.h"
#include "participant/participant.h"

namespace txcoord::participant {

struct StoredBranch {
  std::string txid;
  std::string coordinator;
  std::string changeset;
  absl::Time prepared_at;
  uint64_t branch_token = 0;
  std::string messages;  // EncodeMessages (outbox.h); empty: none
};

struct StoredHeuristic {
  std::string txid;
  std::string coordinator;
  Outcome decision = Outcome::kAborted;
  absl::Time decided_at;
  std::string reason;
  std::optional<Outcome> coordinator_outcome;  // once learned
  bool mixed = false;                          // coordinator_outcome != decision
};

absl::Status CreateInternalTables(sqlite3* db);

// Oldest first.
absl::StatusOr<std::vector<StoredBranch>> LoadPreparedBranches(sqlite3* db);
absl::Status InsertPreparedBranch(StatementCache& statements, const StoredBranch& branch);
absl::Status DeletePreparedBranch(StatementCache& statements, const std::string& txid);

absl::Status InsertOutcome(StatementCache& statements, const std::string& txid, Outcome outcome,
                           absl::Time now);
absl::StatusOr<std::optional<Outcome>> LookupOutcome(sqlite3* db, const std::string& txid);
// Forgets outcomes decided before `cutoff`; returns how many.
absl::StatusOr<int64_t> PruneOutcomes(sqlite3* db, absl::Time cutoff);

// Heuristic decisions are never pruned: they are the record of an
// operator overriding the protocol.
absl::Status InsertHeuristic(sqlite3* db, const StoredHeuristic& heuristic);
absl::StatusOr<std::optional<StoredHeuristic>> LookupHeuristic(sqlite3* db,
                                                               const std::string& txid);
// Oldest first; with `unsettled_only`, only those whose coordinator outcome
// is still unknown.
absl::StatusOr<std::vector<StoredHeuristic>> LoadHeuristics(sqlite3* db, bool unsettled_only);
// Stores what the coordinator decided and whether that contradicts the
// operator.
absl::Status UpdateHeuristicOutcome(sqlite3* db, const std::string& txid, Outcome outcome,
                                    bool mixed);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_INTERNAL_TABLES_H_
