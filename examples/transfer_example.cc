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
#include "client/transaction.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " COORDINATOR PAYMENTS_AGENT LEDGER_AGENT\n";
    return 2;
  }
  // Every call waits for a restarting daemon (wait_for_ready) within its
  // deadline: the options' defaults.
  txcoord::Client coordinator(argv[1]);
  txcoord::AgentClient payments(argv[2]);
  txcoord::AgentClient ledger(argv[3]);

  // Begin may be repeated: a txid never used aborts at its deadline.
  absl::StatusOr<txcoord::Transaction> tx = coordinator.BeginTransaction(absl::Seconds(10));
  if (!tx.ok()) {
    std::cerr << "begin: " << tx.status() << "\n";
    return 1;
  }

  // Each statement runs in this service's branch of the transaction: its
  // rows stay locked and invisible to others until the commit. Integers are
  // int64_t: a plain 100 would be ambiguous between INTEGER and REAL.
  absl::StatusOr<txcoord::SqlResult> debit = tx->ExecuteOne(
      payments, "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
      {int64_t{100}, int64_t{1}});
  if (!debit.ok() || debit->changes == 0) {
    // Too little money, or an error. A failed Execute is never resent
    // (after UNAVAILABLE it may have run): abort, and a real service
    // retries the whole transaction. Abort also releases every agent used.
    (void)tx->Abort();
    std::cerr << "debit failed: " << (debit.ok() ? "insufficient funds" : debit.status().ToString())
              << "\n";
    return 1;
  }
  absl::StatusOr<txcoord::SqlResult> credit = tx->ExecuteOne(
      ledger, "INSERT INTO entries (account, amount) VALUES (?1, ?2)", {int64_t{1}, int64_t{100}});
  if (!credit.ok()) {
    (void)tx->Abort();
    std::cerr << "credit failed: " << credit.status() << "\n";
    return 1;
  }

  // Two-phase commit across both databases: all or nothing. Commit asks
  // again by itself while the answer is lost (e.g. across a coordinator
  // restart), so an error is rare and says what is known.
  absl::StatusOr<txcoord::CommitResult> result = tx->Commit();
  if (!result.ok()) {
    if (txcoord::IsOutcomeUnknown(result.status())) {
      std::cerr << "no answer yet; ask again later (Commit is idempotent): " << result.status()
                << "\n";
    } else {
      std::cerr << "commit: " << result.status() << "\n";  // e.g. OUT_OF_RANGE: expired
    }
    return 1;
  }
  if (!result->committed) {
    std::cerr << "aborted: " << result->reason << "\n";
    return 1;
  }
  std::cout << "committed " << tx->txid() << "\n";
  return 0;
}
