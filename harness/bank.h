// A money-transfer workload over several agents, shared by the demo, the
// integration tests and (later) crash tests: every transfer is one global
// transaction that debits an account at one agent and credits the amount,
// split, to accounts at all the others, so atomicity shows as conservation
// of the total.
//
//   Bank bank(&coordinator, {&a, &b, &c}, BankOptions());
//   absl::Status created = bank.CreateAccounts();
//   absl::BitGen rng;
//   TransferResult r = bank.Transfer(rng);   // from many threads at once
//   absl::Status finished = bank.AwaitPhase2(absl::Seconds(30));  // no transfer running
//   Bank::SumBalances(cluster->agent_dbs());  // == bank.TotalMoney()
#ifndef TXCOORD_HARNESS_BANK_H_
#define TXCOORD_HARNESS_BANK_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/client.h"

namespace txcoord::testing {

struct BankOptions {
  int accounts = 1000;  // per agent, ids 1..accounts
  int64_t initial_balance = 1000;
  // Amounts are 2..max_amount, skewed towards small ones; with a maximum
  // above the initial balance a share of debits fails the balance check.
  int64_t max_amount = 1500;
  // A share of account picks goes to ids 1..hot_accounts, to make row-lock
  // conflicts (and cross-agent deadlocks, ended by the lock timeout) happen.
  int hot_accounts = 0;
  double hot_share = 0;
  absl::Duration tx_timeout = absl::Seconds(20);
  // Short, so that deadlocks across agents end quickly.
  absl::Duration lock_timeout = absl::Seconds(1);
  // Mark each branch's (only) Execute with prepare=true.
  bool early_prepare = false;
  // The share of transfers whose Executes are sent with named_in_commit
  // and whose Commit names the branches (docs/protocol.md, "Naming the
  // branches in Commit"), as Transaction does; the others name nothing.
  double name_branches = 0;
  // Also keep `ledger(txid TEXT PRIMARY KEY, delta INTEGER)` at every agent:
  // each branch that changed its account row inserts its txid there, so
  // the files tell which transfers committed where (see LedgerTxids).
  bool ledger = false;
  // Non-empty: each debit also publishes a transactional message to this
  // topic (key "<agent>:<account>", payload the amount), committed or
  // aborted with the transfer (docs/messaging.md).
  std::string event_topic;
};

enum class TransferOutcome {
  kCommitted,
  kBalanceCheck,  // the debited account had too little: aborted by the client
  kLockConflict,  // an Execute timed out on a row lock: aborted by the client
  kAborted,       // any other abort (a NO vote, a timeout, an error before Commit)
  kUnknown,       // the Commit call failed: the outcome is unknown to the client
};

const char* TransferOutcomeName(TransferOutcome outcome);

struct TransferResult {
  TransferOutcome outcome = TransferOutcome::kAborted;
  std::string txid;
  std::string detail;  // the error or abort reason, if any
  bool commit_called = false;
  absl::Duration commit_latency;  // of the Commit call, if made
  absl::Duration total_latency;   // Begin to the end of Commit or Abort
};

// Thread-safe: Transfer may run from many threads at once. The coordinator
// and agent clients are not owned and must outlive the Bank.
class Bank final {
 public:
  // At least two agents.
  Bank(Client* coordinator, std::vector<AgentClient*> agents, BankOptions options);
  Bank(const Bank&) = delete;
  Bank& operator=(const Bank&) = delete;

  // Creates `accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL
  // CHECK (balance >= 0))` at every agent and fills it, in local autocommit
  // transactions (empty txid). The table must not exist yet.
  absl::Status CreateAccounts();

  // The money in the system: constant under atomic transfers.
  int64_t TotalMoney() const;

  // One transfer: Begin, debit with a balance check (changes == 0 means
  // too little money: Abort), credits, Commit. Never throws; every failure
  // is an outcome.
  TransferResult Transfer(absl::BitGenRef rng);

  // Returns once phase 2 of every transfer has finished at every agent (see
  // AwaitPhase2 in lock_barrier.h). Call when no transfer is running.
  absl::Status AwaitPhase2(absl::Duration timeout);

  // Sum of all balances, and the number of rows in _txcoord_prepared (the
  // agents' prepared, undecided branches), over the database files, read
  // directly with read-only connections.
  static absl::StatusOr<int64_t> SumBalances(const std::vector<std::string>& db_paths);
  static absl::StatusOr<int64_t> CountPrepared(const std::vector<std::string>& db_paths);
  // The txids in one database file's ledger (BankOptions::ledger).
  static absl::StatusOr<std::set<std::string>> LedgerTxids(const std::string& db_path);

 private:
  // One statement of a branch, plus its ledger row when the ledger is on;
  // adds the branch it wrote in to `named`.
  absl::StatusOr<SqlResult> Write(AgentClient& agent, const std::string& txid, const char* sql,
                                  std::vector<SqlValue> params, int64_t delta,
                                  const ExecuteOptions& execute,
                                  std::vector<NamedBranch>* named) const;
  int64_t PickAccount(absl::BitGenRef rng) const;
  int64_t PickAmount(absl::BitGenRef rng) const;
  // Aborts `txid` at the coordinator and finishes `result` with `outcome`.
  void AbortTransfer(TransferOutcome outcome, std::string detail, absl::Time start,
                     TransferResult* result);

  Client* const coordinator_;
  const std::vector<AgentClient*> agents_;
  const BankOptions options_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_BANK_H_
