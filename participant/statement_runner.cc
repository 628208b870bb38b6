#include "participant/statement_runner.h"

#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {
namespace {

size_t ValueBytes(const SqlValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return s->size();
  if (const auto* b = std::get_if<Blob>(&value)) return b->bytes.size();
  return sizeof(int64_t);
}

// How many SQLite VM instructions run between two looks at the clock: a
// look costs tens of nanoseconds, 1000 instructions some microseconds.
constexpr int kStepsPerDeadlineCheck = 1000;

// While alive, makes SQLite interrupt whatever runs on `db` once `deadline`
// has passed (the statement fails with SQLITE_INTERRUPT and SQLite rolls back
// the transaction). Clears the handler on destruction.
class Interrupter final {
 public:
  Interrupter(sqlite3* db, absl::Time deadline) : db_(db), deadline_(deadline) {
    if (deadline_ != absl::InfiniteFuture()) {
      sqlite3_progress_handler(db_, kStepsPerDeadlineCheck, &Interrupter::OnProgress, this);
    }
  }
  ~Interrupter() { sqlite3_progress_handler(db_, 0, nullptr, nullptr); }
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;

  // True once SQLite was told to stop: the failure of the run is this.
  bool fired() const { return fired_; }

 private:
  static int OnProgress(void* self) {
    auto* interrupter = static_cast<Interrupter*>(self);
    if (absl::Now() < interrupter->deadline_) return 0;
    interrupter->fired_ = true;
    return 1;
  }

  sqlite3* const db_;
  const absl::Time deadline_;
  bool fired_ = false;
};

// The authorizer's reason when it refused, else SQLite's own error.
absl::Status Refusal(const Authorizer& authorizer, absl::Status sqlite_status) {
  absl::Status verdict = authorizer.Verdict();
  return verdict.ok() ? sqlite_status : verdict;
}

}  // namespace

size_t KeptStatements::size() const {
  size_t kept = 0;
  for (const Map& map : by_mode_) kept += map.size();
  return kept;
}

Statement* KeptStatements::Find(Authorizer::Mode mode, absl::string_view sql,
                                Authorizer& authorizer) {
  Map& map = ByMode(mode);
  auto it = map.find(sql);
  if (it == map.end()) return nullptr;
  authorizer.NoteWritten(it->second.tables_written);
  return &it->second.statement;
}

Statement* KeptStatements::Keep(Authorizer::Mode mode, absl::string_view sql, Statement statement,
                                std::vector<std::string> tables_written) {
  if (size() >= capacity_) Clear();
  Kept& kept = ByMode(mode)[sql];
  kept.statement = std::move(statement);
  kept.tables_written = std::move(tables_written);
  return &kept.statement;
}

namespace {

// Compiles the one statement of `sql` under the authorizer's judgment. Kept
// in `kept` (if any) unless it is DDL or follows DDL, else left in `own`.
absl::StatusOr<Statement*> Compile(sqlite3* db, Authorizer& authorizer, Authorizer::Mode mode,
                                   KeptStatements* kept, absl::string_view sql, Statement* own) {
  size_t tail = 0;
  absl::StatusOr<Statement> stmt = Statement::Prepare(db, sql, &tail);
  if (!stmt.ok()) return Refusal(authorizer, stmt.status());
  if (stmt->get() == nullptr) return absl::InvalidArgumentError("empty SQL statement");
  if (absl::Status verdict = authorizer.Verdict(); !verdict.ok()) return verdict;
  // Not kept from a batch that changed the schema: should it roll back,
  // the schema's version comes back and would not empty the set.
  const bool keep =
      kept != nullptr && !authorizer.statement_is_ddl() && !authorizer.batch_had_ddl();
  std::vector<std::string> tables_written = authorizer.statement_tables_written();
  {
    // A second statement in the same text would escape the checks below
    // (parameters, results), so refuse it instead of running it.
    absl::StatusOr<Statement> rest = Statement::Prepare(db, sql.substr(tail));
    if (!rest.ok() || rest->get() != nullptr) {
      return absl::InvalidArgumentError("more than one SQL statement in one item");
    }
    authorizer.BeginStatement(mode);  // forget what the look past the end saw
  }
  if (!keep) {
    *own = *std::move(stmt);
    return own;
  }
  return kept->Keep(mode, sql, *std::move(stmt), std::move(tables_written));
}

absl::Status RunOne(sqlite3* db, Authorizer& authorizer, Authorizer::Mode mode,
                    KeptStatements* kept, const SqlStatement& statement, const ResultLimits& limits,
                    size_t* bytes, SqlResult* result) {
  authorizer.BeginStatement(mode);
  auto end = absl::MakeCleanup([&authorizer] { authorizer.EndStatement(); });

  if (kept != nullptr && statement.sql.size() > KeptStatements::kMaxKeptSqlBytes) kept = nullptr;
  Statement own;
  Statement* found = kept != nullptr ? kept->Find(mode, statement.sql, authorizer) : nullptr;
  if (found == nullptr) {
    absl::StatusOr<Statement*> compiled = Compile(db, authorizer, mode, kept, statement.sql, &own);
    if (!compiled.ok()) return compiled.status();
    found = *compiled;
  }
  Statement& stmt = *found;
  // Left reset and unbound for its next run; a kept one whose run failed
  // is compiled again next time rather than trusted.
  bool failed = true;
  auto done = absl::MakeCleanup([&] {
    stmt.Reset();
    sqlite3_clear_bindings(stmt.get());
    if (failed && &stmt != &own) kept->Forget(mode, statement.sql);
  });

  const int expected = sqlite3_bind_parameter_count(stmt.get());
  if (static_cast<size_t>(expected) != statement.params.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the statement takes ", expected,
                                                   " parameters but ", statement.params.size(),
                                                   " were given"));
  }
  if (absl::Status status = stmt.BindAll(statement.params); !status.ok()) return status;

  // The first step may compile the statement again (the schema moved, or a
  // changeset apply expired it), under the authorizer: its verdict and the
  // result's columns are read after it, as after a compile. What such a
  // step wrote despite a refusal is rolled back with the batch.
  absl::StatusOr<int> rc = stmt.Step();
  if (!rc.ok()) return Refusal(authorizer, rc.status());
  if (absl::Status verdict = authorizer.Verdict(); !verdict.ok()) return verdict;
  const int column_count = sqlite3_column_count(stmt.get());
  for (int i = 0; i < column_count; ++i) {
    const char* name = sqlite3_column_name(stmt.get(), i);
    result->columns.push_back(name != nullptr ? name : "");
    *bytes += result->columns.back().size();
  }
  while (*rc == SQLITE_ROW) {
    if (result->rows.size() >= limits.max_rows_per_statement) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", limits.max_rows_per_statement, " rows"));
    }
    std::vector<SqlValue>& row = result->rows.emplace_back();
    row.reserve(column_count);
    for (int i = 0; i < column_count; ++i) {
      row.push_back(stmt.Column(i));
      *bytes += ValueBytes(row.back());
    }
    if (*bytes > limits.max_result_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("results exceed ", limits.max_result_bytes, " bytes"));
    }
    rc = stmt.Step();
    if (!rc.ok()) return Refusal(authorizer, rc.status());
  }
  if (!sqlite3_stmt_readonly(stmt.get())) {
    result->changes = sqlite3_changes64(db);
    result->last_insert_rowid = sqlite3_last_insert_rowid(db);
  }
  failed = false;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SqlResult>> RunStatements(sqlite3* db, Authorizer& authorizer,
                                                     Authorizer::Mode mode,
                                                     const std::vector<SqlStatement>& statements,
                                                     const ResultLimits& limits,
                                                     absl::Time call_deadline,
                                                     KeptStatements* kept) {
  const bool limited = limits.max_run_time > absl::ZeroDuration();
  const absl::Time run_deadline =
      limited ? absl::Now() + limits.max_run_time : absl::InfiniteFuture();
  const bool by_call = call_deadline < run_deadline;
  Interrupter interrupter(db, by_call ? call_deadline : run_deadline);
  std::vector<SqlResult> results;
  results.reserve(statements.size());
  size_t bytes = 0;
  for (size_t i = 0; i < statements.size(); ++i) {
    absl::Status status =
        RunOne(db, authorizer, mode, kept, statements[i], limits, &bytes, &results.emplace_back());
    // An interrupt shows as whatever SQLite was doing failing (a step, or a
    // prepare reading the schema): name the limit instead.
    if (!status.ok() && interrupter.fired()) {
      status =
          by_call
              ? absl::DeadlineExceededError("interrupted: the call's deadline passed; rolled back")
              : absl::ResourceExhaustedError(
                    absl::StrCat("interrupted: the call's statements ran longer than ",
                                 absl::FormatDuration(limits.max_run_time),
                                 " (--max_statement_time); rolled back"));
    }
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("statements[", i, "]: ", status.message()));
    }
  }
  return results;
}

}  // namespace txcoord::participant
