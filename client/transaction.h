// One global transaction as a service drives it: its txid, and the agents
// it ran SQL through, so that ending it reaches every one of them, including
// agents where it wrote nothing (those branches never enlisted, so neither
// the coordinator's Abort nor phase 2 reaches them).
//
//   txcoord::Client coordinator("127.0.0.1:7070");
//   txcoord::AgentClient payments("127.0.0.1:7101"), ledger("127.0.0.1:7102");
//   absl::StatusOr<txcoord::Transaction> tx = coordinator.BeginTransaction(absl::Seconds(30));
//   if (!tx.ok()) return tx.status();                     // Begin may be retried
//   absl::StatusOr<txcoord::SqlResult> debit = tx->ExecuteOne(payments, "UPDATE ...", {...});
//   if (!debit.ok()) { (void)tx->Abort(); return debit.status(); }  // retry it whole
//   absl::StatusOr<txcoord::CommitResult> result = tx->Commit();
//   // result->committed, or aborted with result->reason; IsOutcomeUnknown: ask again later.
#ifndef TXCOORD_CLIENT_TRANSACTION_H_
#define TXCOORD_CLIENT_TRANSACTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/agent_client.h"
#include "client/client.h"

namespace txcoord {

// Adds the branch `result` reports to `named`, what a Commit names: each
// participant once, with the first token it reported (a later, different
// one means the agent lost that branch, and naming the first makes the
// Commit abort). A result that reports no branch adds nothing. A signed
// vote (ExecuteResult::vote_proof) reported later for the same token joins
// the branch's entry.
void NameBranch(const ExecuteResult& result, std::vector<NamedBranch>* named);

// Not thread-safe: one thread drives a transaction (calls on other
// Transactions, Clients and AgentClients may run concurrently). Movable,
// not copyable. The Client and every AgentClient it is given must outlive
// it. Dropping a Transaction neither commits nor aborts it: its deadline
// aborts it.
class Transaction final {
 public:
  // Takes over `txid`, begun at `client` (Client::BeginTransaction does
  // both). With `name_branches` (the coordinator's Begin said
  // checks_named_branches), Executes are sent with named_in_commit and
  // Commit names the branches they reported: agents answer without waiting
  // for the coordinator to acknowledge each branch.
  Transaction(Client& client, std::string txid, bool name_branches = false);
  Transaction(Transaction&&) = default;
  Transaction& operator=(Transaction&&) = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const std::string& txid() const { return txid_; }

  // AgentClient::Execute with this txid; remembers `agent` and what the
  // statements changed there. Never repeat a failed Execute: after
  // UNAVAILABLE or DEADLINE_EXCEEDED whether it ran is unknown, and after
  // ABORTED the transaction cannot commit; Abort and retry the whole
  // transaction. With options.prepare, ABORTED also means: do not Commit.
  [[nodiscard]] absl::StatusOr<ExecuteResult> Execute(AgentClient& agent,
                                                      const std::vector<SqlStatement>& statements,
                                                      const ExecuteOptions& options = {});
  [[nodiscard]] absl::StatusOr<SqlResult> ExecuteOne(AgentClient& agent, const std::string& sql,
                                                     const std::vector<SqlValue>& params = {},
                                                     const ExecuteOptions& options = {});

  // One agent's part of ExecuteAll.
  struct Branch {
    AgentClient* agent = nullptr;
    std::vector<SqlStatement> statements;
    ExecuteOptions options;
  };
  // Execute at several agents at once, waiting for every answer: the
  // transaction takes as long as its slowest branch, not the sum of them.
  // Results in the order of `branches`, each what Execute would return
  // (and under its rules on failure). Each agent at most once: two calls
  // into one branch at once would run in no defined order, so a repeated
  // agent fails every result with INVALID_ARGUMENT and nothing is sent.
  [[nodiscard]] std::vector<absl::StatusOr<ExecuteResult>> ExecuteAll(
      const std::vector<Branch>& branches);

  // AgentClient::Publish with this txid: the messages are published once
  // the transaction commits. The same rules as Execute on failure.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Publish(
      AgentClient& agent, const std::vector<Message>& messages);

  // Client::Commit (which settles a lost answer itself), then, once the
  // outcome is known, Release at every agent where the transaction changed
  // no row (best effort: the agent's idle timeout ends what a failed
  // Release leaves). Release never touches a prepared branch, so this is
  // safe whatever the outcome. Errors are Client::Commit's, and
  // FAILED_PRECONDITION, with nothing sent, when an Execute with prepare
  // failed (its branch may be prepared unknown to the coordinator, and
  // committing would commit the others without it): Abort instead.
  [[nodiscard]] absl::StatusOr<CommitResult> Commit();

  // Client::Abort, then Release at every agent used. All are sent even if
  // one fails. Returns the coordinator's error if any, else the first
  // agent's; each call is idempotent, so Abort may be repeated.
  [[nodiscard]] absl::Status Abort();

 private:
  struct AgentUse {
    AgentClient* agent;
    // Rows its successful Executes changed; or it had an Execute that
    // failed, so that what it changed is unknown.
    int64_t changes = 0;
    bool unknown = false;
    // An Execute with prepare failed here: the transaction must not
    // commit (its vote may be prepared yet unknown to the coordinator, as
    // a signed vote whose answer was lost is), so Commit refuses.
    std::string failed_prepare;
  };
  AgentUse& Use(AgentClient& agent);
  // `options` as sent: with named_in_commit when this transaction names its
  // branches.
  ExecuteOptions Sent(const ExecuteOptions& options) const;
  // What a finished Execute at `agent` changed (or that it is unknown).
  void Record(AgentClient& agent, const absl::StatusOr<ExecuteResult>& result, bool prepare);

  Client* client_;
  std::string txid_;
  std::vector<AgentUse> agents_;  // in order of first use
  bool name_branches_ = false;
  std::vector<NamedBranch> named_;  // NameBranch of every successful Execute
};

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_TRANSACTION_H_
