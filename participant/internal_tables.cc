#include "participant/internal_tables.h"

#include <utility>

#include "common/sqlite_db.h"
#include "participant/outbox_store.h"

namespace txcoord::participant {
namespace {

constexpr char kCommitted[] = "committed";
constexpr char kAborted[] = "aborted";

absl::Status AddPreparedColumnIfMissing(sqlite3* db, const std::string& name,
                                        const std::string& definition) {
  absl::StatusOr<Statement> has = PrepareWith(
      db, "SELECT count(*) FROM pragma_table_info('_txcoord_prepared') WHERE name = ?1", {name});
  if (!has.ok()) return has.status();
  absl::StatusOr<int> rc = has->Step();
  if (!rc.ok()) return rc.status();
  if (*rc != SQLITE_ROW || has->ColumnInt(0) != 0) return absl::OkStatus();
  const std::string sql = "ALTER TABLE _txcoord_prepared ADD COLUMN " + definition;
  return ExecSql(db, sql.c_str());
}

const char* OutcomeText(Outcome outcome) {
  return outcome == Outcome::kCommitted ? kCommitted : kAborted;
}

constexpr char kHeuristicColumns[] =
    "SELECT txid, coordinator, decision, decided_at_ms, reason, coordinator_outcome, mixed "
    "FROM _txcoord_heuristics ";

StoredHeuristic HeuristicFromRow(const Statement& stmt) {
  StoredHeuristic h;
  h.txid = stmt.ColumnText(0);
  h.coordinator = stmt.ColumnText(1);
  h.decision = stmt.ColumnText(2) == kCommitted ? Outcome::kCommitted : Outcome::kAborted;
  h.decided_at = absl::FromUnixMillis(stmt.ColumnInt(3));
  h.reason = stmt.ColumnText(4);
  if (sqlite3_column_type(stmt.get(), 5) != SQLITE_NULL) {
    h.coordinator_outcome =
        stmt.ColumnText(5) == kCommitted ? Outcome::kCommitted : Outcome::kAborted;
  }
  h.mixed = stmt.ColumnInt(6) != 0;
  return h;
}

}  // namespace

absl::Status CreateInternalTables(sqlite3* db) {
  // WITHOUT ROWID: one b-tree keyed by txid rather than a table plus its
  // primary-key index, so a prepare or a commit writes fewer pages.
  // Tables created by older agents keep their layout; both work.
  absl::Status status =
      ExecSql(db,
              "CREATE TABLE IF NOT EXISTS _txcoord_prepared("
              "  txid TEXT PRIMARY KEY, coordinator TEXT NOT NULL, changeset BLOB NOT NULL,"
              "  prepared_at_ms INTEGER NOT NULL, branch_token INTEGER NOT NULL DEFAULT 0)"
              "  WITHOUT ROWID;"
              "CREATE TABLE IF NOT EXISTS _txcoord_outcomes("
              "  txid TEXT PRIMARY KEY, outcome TEXT NOT NULL, decided_at_ms INTEGER NOT NULL)"
              "  WITHOUT ROWID;"
              "CREATE TABLE IF NOT EXISTS _txcoord_heuristics("
              "  txid TEXT PRIMARY KEY, coordinator TEXT NOT NULL, decision TEXT NOT NULL,"
              "  decided_at_ms INTEGER NOT NULL, reason TEXT NOT NULL,"
              "  coordinator_outcome TEXT, mixed INTEGER NOT NULL DEFAULT 0);");
  if (!status.ok()) return status;
  status = CreateOutboxTable(db);
  if (!status.ok()) return status;
  // Databases prepared by agents that predate branch tokens: their branches
  // keep token 0, which the coordinator never checks.
  status =
      AddPreparedColumnIfMissing(db, "branch_token", "branch_token INTEGER NOT NULL DEFAULT 0");
  if (!status.ok()) return status;
  // ... or transactional messages: their branches have none.
  return AddPreparedColumnIfMissing(db, "messages", "messages BLOB");
}

absl::StatusOr<std::vector<StoredBranch>> LoadPreparedBranches(sqlite3* db) {
  absl::StatusOr<Statement> stmt =
      PrepareWith(db,
                  "SELECT txid, coordinator, changeset, prepared_at_ms, branch_token, messages "
                  "FROM _txcoord_prepared "
                  "ORDER BY prepared_at_ms, txid",
                  {});
  if (!stmt.ok()) return stmt.status();
  std::vector<StoredBranch> branches;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return branches;
    StoredBranch& branch = branches.emplace_back();
    branch.txid = stmt->ColumnText(0);
    branch.coordinator = stmt->ColumnText(1);
    SqlValue changeset = stmt->Column(2);
    if (auto* blob = std::get_if<Blob>(&changeset)) branch.changeset = std::move(blob->bytes);
    branch.prepared_at = absl::FromUnixMillis(stmt->ColumnInt(3));
    branch.branch_token = static_cast<uint64_t>(stmt->ColumnInt(4));
    SqlValue messages = stmt->Column(5);
    if (auto* blob = std::get_if<Blob>(&messages)) branch.messages = std::move(blob->bytes);
  }
}

absl::Status InsertPreparedBranch(StatementCache& statements, const StoredBranch& branch) {
  return statements.Run(
      "INSERT INTO _txcoord_prepared(txid, coordinator, changeset, prepared_at_ms, "
      "branch_token, messages) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
      {branch.txid, branch.coordinator, Blob{branch.changeset},
       absl::ToUnixMillis(branch.prepared_at), static_cast<int64_t>(branch.branch_token),
       branch.messages.empty() ? SqlValue() : SqlValue(Blob{branch.messages})});
}

absl::Status DeletePreparedBranch(StatementCache& statements, const std::string& txid) {
  return statements.Run("DELETE FROM _txcoord_prepared WHERE txid = ?1", {txid});
}

absl::Status InsertOutcome(StatementCache& statements, const std::string& txid, Outcome outcome,
                           absl::Time now) {
  return statements.Run(
      "INSERT OR REPLACE INTO _txcoord_outcomes(txid, outcome, decided_at_ms) "
      "VALUES(?1, ?2, ?3)",
      {txid, std::string(outcome == Outcome::kCommitted ? kCommitted : kAborted),
       absl::ToUnixMillis(now)});
}

absl::StatusOr<std::optional<Outcome>> LookupOutcome(sqlite3* db, const std::string& txid) {
  absl::StatusOr<Statement> stmt =
      PrepareWith(db, "SELECT outcome FROM _txcoord_outcomes WHERE txid = ?1", {txid});
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<int> rc = stmt->Step();
  if (!rc.ok()) return rc.status();
  if (*rc == SQLITE_DONE) return std::nullopt;
  return stmt->ColumnText(0) == kCommitted ? Outcome::kCommitted : Outcome::kAborted;
}

absl::StatusOr<int64_t> PruneOutcomes(sqlite3* db, absl::Time cutoff) {
  absl::Status status = RunWith(db, "DELETE FROM _txcoord_outcomes WHERE decided_at_ms < ?1",
                                {absl::ToUnixMillis(cutoff)});
  if (!status.ok()) return status;
  return sqlite3_changes64(db);
}

absl::Status InsertHeuristic(sqlite3* db, const StoredHeuristic& h) {
  return RunWith(db,
                 "INSERT INTO _txcoord_heuristics(txid, coordinator, decision, decided_at_ms,"
                 " reason) VALUES(?1, ?2, ?3, ?4, ?5)",
                 {h.txid, h.coordinator, std::string(OutcomeText(h.decision)),
                  absl::ToUnixMillis(h.decided_at), h.reason});
}

absl::StatusOr<std::optional<StoredHeuristic>> LookupHeuristic(sqlite3* db,
                                                               const std::string& txid) {
  absl::StatusOr<Statement> stmt =
      PrepareWith(db, (std::string(kHeuristicColumns) + "WHERE txid = ?1").c_str(), {txid});
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<int> rc = stmt->Step();
  if (!rc.ok()) return rc.status();
  if (*rc == SQLITE_DONE) return std::nullopt;
  return HeuristicFromRow(*stmt);
}

absl::StatusOr<std::vector<StoredHeuristic>> LoadHeuristics(sqlite3* db, bool unsettled_only) {
  const std::string sql = std::string(kHeuristicColumns) +
                          (unsettled_only ? "WHERE coordinator_outcome IS NULL " : "") +
                          "ORDER BY decided_at_ms, txid";
  absl::StatusOr<Statement> stmt = PrepareWith(db, sql.c_str(), {});
  if (!stmt.ok()) return stmt.status();
  std::vector<StoredHeuristic> heuristics;
  while (true) {
    absl::StatusOr<int> rc = stmt->Step();
    if (!rc.ok()) return rc.status();
    if (*rc == SQLITE_DONE) return heuristics;
    heuristics.push_back(HeuristicFromRow(*stmt));
  }
}

absl::Status UpdateHeuristicOutcome(sqlite3* db, const std::string& txid, Outcome outcome,
                                    bool mixed) {
  return RunWith(db,
                 "UPDATE _txcoord_heuristics SET coordinator_outcome = ?2, mixed = ?3 "
                 "WHERE txid = ?1",
                 {txid, std::string(OutcomeText(outcome)), int64_t{mixed ? 1 : 0}});
}

}  // namespace txcoord::participant
