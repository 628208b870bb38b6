// The smallest useful txcoord client: move 100 from an account in one
// service's database to a ledger entry in another's, atomically. Built with
// the project to keep it honest; not run by it.
//
//   transfer_example COORDINATOR_ADDR PAYMENTS_AGENT_ADDR LEDGER_AGENT_ADDR
#include <cstdint>
#include <iostream>
#include <string>

#include "client/agent_client.h"
#include "client/client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " COORDINATOR PAYMENTS_AGENT LEDGER_AGENT\n";
    return 2;
  }
  txcoord::Client coordinator(argv[1]);
  txcoord::AgentClient payments(argv[2]);
  txcoord::AgentClient ledger(argv[3]);

  absl::StatusOr<std::string> txid = coordinator.Begin(absl::Seconds(10));
  if (!txid.ok()) {
    std::cerr << "begin: " << txid.status() << "\n";
    return 1;
  }

  // Each statement runs in this service's branch of the transaction: its
  // rows stay locked and invisible to others until the commit. Integers are
  // int64_t: a plain 100 would be ambiguous between INTEGER and REAL.
  absl::StatusOr<txcoord::SqlResult> debit = payments.ExecuteOne(
      *txid, "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
      {int64_t{100}, int64_t{1}});
  if (!debit.ok() || debit->changes == 0) {
    // Too little money, or an error (ABORTED, e.g. a lock timeout, means:
    // retry the whole transaction). Either way nothing may commit.
    (void)coordinator.Abort(*txid);
    std::cerr << "debit failed: " << (debit.ok() ? "insufficient funds" : debit.status().ToString())
              << "\n";
    return 1;
  }
  absl::StatusOr<txcoord::SqlResult> credit = ledger.ExecuteOne(
      *txid, "INSERT INTO entries (account, amount) VALUES (?1, ?2)", {int64_t{1}, int64_t{100}});
  if (!credit.ok()) {
    (void)coordinator.Abort(*txid);
    std::cerr << "credit failed: " << credit.status() << "\n";
    return 1;
  }

  // Two-phase commit across both databases: all or nothing.
  absl::StatusOr<txcoord::CommitResult> result = coordinator.Commit(*txid);
  if (!result.ok()) {
    // The decision may or may not have been taken: Commit is idempotent, so
    // a real service would ask again rather than guess.
    std::cerr << "commit outcome unknown: " << result.status() << "\n";
    return 1;
  }
  if (!result->committed) {
    std::cerr << "aborted: " << result->reason << "\n";
    return 1;
  }
  std::cout << "committed " << *txid << "\n";
  return 0;
}
