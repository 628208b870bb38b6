#include "harness/bank.h"

#include <algorithm>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/transaction.h"
#include "harness/lock_barrier.h"
#include "harness/sqlite_inspect.h"

namespace txcoord::testing {
namespace {

constexpr char kCreateTable[] =
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))";
// ?1 twice: the check and the debit use the same amount, in one statement,
// so no other transfer can slip in between them.
constexpr char kDebit[] =
    "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1";
constexpr char kCredit[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";
constexpr char kCreateLedger[] =
    "CREATE TABLE ledger (txid TEXT PRIMARY KEY, delta INTEGER NOT NULL)";
// Only after a statement that changed its account row: a debit that failed
// the balance check leaves no ledger row, so its branch writes nothing and
// holds no lock. A branch that wrote the ledger alone would hold no lock on
// an accounts row, and AwaitPhase2's barrier (which writes every accounts
// row) would not wait for it: an early-prepared one cut off from its Abort
// by a coordinator crash would still be in doubt when the barrier returned.
constexpr char kLedger[] = "INSERT INTO ledger (txid, delta) SELECT ?1, ?2 WHERE changes() > 0";
// Rows per INSERT: keeps each statement far below the 64 KiB limit.
constexpr int kRowsPerInsert = 1000;

std::string StatusText(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

// An Execute error's outcome: a row-lock timeout is the expected conflict
// of a contended workload; anything else is worth a closer look.
TransferOutcome ClassifyExecuteError(const absl::Status& status) {
  if (absl::IsAborted(status) &&
      absl::StrContains(absl::AsciiStrToLower(status.message()), "lock")) {
    return TransferOutcome::kLockConflict;
  }
  return TransferOutcome::kAborted;
}

}  // namespace

const char* TransferOutcomeName(TransferOutcome outcome) {
  switch (outcome) {
    case TransferOutcome::kCommitted:
      return "committed";
    case TransferOutcome::kBalanceCheck:
      return "balance check";
    case TransferOutcome::kLockConflict:
      return "lock conflict";
    case TransferOutcome::kAborted:
      return "aborted";
    case TransferOutcome::kUnknown:
      return "unknown";
  }
  return "?";
}

Bank::Bank(Client* coordinator, std::vector<AgentClient*> agents, BankOptions options)
    : coordinator_(coordinator), agents_(std::move(agents)), options_(options) {}

int64_t Bank::TotalMoney() const {
  return options_.initial_balance * options_.accounts * static_cast<int64_t>(agents_.size());
}

absl::Status Bank::CreateAccounts() {
  if (agents_.size() < 2) return absl::InvalidArgumentError("a bank needs at least two agents");
  std::vector<SqlStatement> statements = {{kCreateTable, {}}};
  if (options_.ledger) statements.push_back({kCreateLedger, {}});
  for (int first = 1; first <= options_.accounts; first += kRowsPerInsert) {
    std::string sql = "INSERT INTO accounts (id, balance) VALUES ";
    const int last = std::min(options_.accounts, first + kRowsPerInsert - 1);
    for (int id = first; id <= last; ++id) {
      absl::StrAppend(&sql, id == first ? "" : ",", "(", id, ",", options_.initial_balance, ")");
    }
    statements.push_back({std::move(sql), {}});
  }
  for (size_t i = 0; i < agents_.size(); ++i) {
    absl::StatusOr<ExecuteResult> result = agents_[i]->Execute(/*txid=*/"", statements);
    if (!result.ok()) {
      return absl::Status(result.status().code(), absl::StrCat("creating accounts at agent #", i,
                                                               ": ", result.status().message()));
    }
  }
  return absl::OkStatus();
}

int64_t Bank::PickAccount(absl::BitGenRef rng) const {
  if (options_.hot_accounts > 0 && absl::Bernoulli(rng, options_.hot_share)) {
    return absl::Uniform<int64_t>(absl::IntervalClosed, rng, 1,
                                  std::min(options_.hot_accounts, options_.accounts));
  }
  return absl::Uniform<int64_t>(absl::IntervalClosed, rng, 1, options_.accounts);
}

int64_t Bank::PickAmount(absl::BitGenRef rng) const {
  // u^2 skews towards small amounts: most transfers succeed, the large tail
  // fails the balance check once balances have spread out (or at once, above
  // the initial balance).
  const double u = absl::Uniform<double>(rng, 0.0, 1.0);
  const int64_t low = std::max<int64_t>(2, static_cast<int64_t>(agents_.size()) - 1);
  const int64_t high = std::max(low, options_.max_amount);
  return low + static_cast<int64_t>(static_cast<double>(high - low) * u * u);
}

void Bank::AbortTransfer(TransferOutcome outcome, std::string detail, absl::Time start,
                         TransferResult* result) {
  // Best effort: if this is lost, the coordinator aborts the transaction at
  // its deadline anyway (presumed abort), and the branches with it.
  if (absl::Status aborted = coordinator_->Abort(result->txid); !aborted.ok()) {
    absl::StrAppend(&detail, " (and Abort failed: ", StatusText(aborted), ")");
  }
  result->outcome = outcome;
  result->detail = std::move(detail);
  result->total_latency = absl::Now() - start;
}

absl::StatusOr<SqlResult> Bank::Write(AgentClient& agent, const std::string& txid, const char* sql,
                                      std::vector<SqlValue> params, int64_t delta,
                                      const ExecuteOptions& execute,
                                      std::vector<NamedBranch>* named) const {
  std::vector<SqlStatement> statements = {{sql, std::move(params)}};
  if (options_.ledger) statements.push_back({kLedger, {txid, delta}});
  absl::StatusOr<ExecuteResult> result = agent.Execute(txid, statements, execute);
  if (!result.ok()) return result.status();
  NameBranch(*result, named);
  return std::move(result->results.front());
}

TransferResult Bank::Transfer(absl::BitGenRef rng) {
  TransferResult result;
  const absl::Time start = absl::Now();
  const bool name = absl::Bernoulli(rng, options_.name_branches);
  absl::StatusOr<BeginResult> begun = coordinator_->BeginWith(options_.tx_timeout);
  if (!begun.ok()) {
    result.detail = absl::StrCat("Begin: ", StatusText(begun.status()));
    result.total_latency = absl::Now() - start;
    return result;
  }
  result.txid = std::move(begun->txid);

  ExecuteOptions execute;
  execute.lock_timeout = options_.lock_timeout;
  // Each branch gets exactly one Execute, so it can prepare right away.
  execute.prepare = options_.early_prepare;
  execute.named_in_commit = name && begun->checks_named_branches;
  std::vector<NamedBranch> named;

  const size_t from = absl::Uniform<size_t>(rng, 0, agents_.size());
  const int64_t amount = PickAmount(rng);
  const int64_t account = PickAccount(rng);
  ExecuteOptions debit_execute = execute;
  if (!options_.event_topic.empty()) {
    debit_execute.messages.push_back(
        {options_.event_topic, absl::StrCat(from, ":", account), absl::StrCat(amount), {}});
  }
  absl::StatusOr<SqlResult> debit =
      Write(*agents_[from], result.txid, kDebit, {amount, account}, -amount, debit_execute, &named);
  if (!debit.ok()) {
    AbortTransfer(ClassifyExecuteError(debit.status()),
                  absl::StrCat("debit: ", StatusText(debit.status())), start, &result);
    return result;
  }
  if (debit->changes == 0) {
    AbortTransfer(TransferOutcome::kBalanceCheck, "", start, &result);
    return result;
  }

  // Split the amount over the other agents, at least 1 each.
  const size_t others = agents_.size() - 1;
  int64_t left = amount - static_cast<int64_t>(others);
  size_t credited = 0;
  for (size_t i = 0; i < agents_.size(); ++i) {
    if (i == from) continue;
    ++credited;
    int64_t extra =
        credited == others ? left : absl::Uniform<int64_t>(absl::IntervalClosed, rng, 0, left);
    left -= extra;
    absl::StatusOr<SqlResult> credit =
        Write(*agents_[i], result.txid, kCredit, {1 + extra, PickAccount(rng)}, 1 + extra, execute,
              &named);
    if (!credit.ok()) {
      AbortTransfer(ClassifyExecuteError(credit.status()),
                    absl::StrCat("credit: ", StatusText(credit.status())), start, &result);
      return result;
    }
    if (credit->changes != 1) {
      AbortTransfer(TransferOutcome::kAborted,
                    absl::StrCat("credit changed ", credit->changes, " rows, expected 1"), start,
                    &result);
      return result;
    }
  }

  const absl::Time commit_start = absl::Now();
  if (!execute.named_in_commit) named.clear();
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(result.txid, named);
  const absl::Time end = absl::Now();
  result.commit_called = true;
  result.commit_latency = end - commit_start;
  result.total_latency = end - start;
  if (!commit.ok()) {
    result.outcome = TransferOutcome::kUnknown;
    result.detail = absl::StrCat("Commit: ", StatusText(commit.status()));
  } else if (commit->committed) {
    result.outcome = TransferOutcome::kCommitted;
  } else {
    result.outcome = TransferOutcome::kAborted;
    result.detail = absl::StrCat("Commit: aborted: ", commit->reason);
  }
  return result;
}

absl::Status Bank::AwaitPhase2(absl::Duration timeout) {
  return testing::AwaitPhase2(*coordinator_, agents_,
                              {"UPDATE accounts SET balance = balance + 1", {}}, options_.accounts,
                              timeout);
}

absl::StatusOr<int64_t> Bank::SumBalances(const std::vector<std::string>& db_paths) {
  return SumQueryInt64(db_paths, "SELECT COALESCE(SUM(balance), 0) FROM accounts");
}

absl::StatusOr<int64_t> Bank::CountPrepared(const std::vector<std::string>& db_paths) {
  return SumQueryInt64(db_paths, "SELECT COUNT(*) FROM _txcoord_prepared");
}

absl::StatusOr<std::set<std::string>> Bank::LedgerTxids(const std::string& db_path) {
  return QueryStrings(db_path, "SELECT txid FROM ledger");
}

}  // namespace txcoord::testing
