#include "client/transaction.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace txcoord {

Transaction::Transaction(Client& client, std::string txid)
    : client_(&client), txid_(std::move(txid)) {}

Transaction::AgentUse& Transaction::Use(AgentClient& agent) {
  for (AgentUse& use : agents_) {
    if (use.agent == &agent) return use;
  }
  return agents_.emplace_back(AgentUse{&agent});
}

absl::StatusOr<ExecuteResult> Transaction::Execute(AgentClient& agent,
                                                   const std::vector<SqlStatement>& statements,
                                                   const ExecuteOptions& options) {
  AgentUse& use = Use(agent);
  absl::StatusOr<ExecuteResult> result = agent.Execute(txid_, statements, options);
  if (!result.ok()) {
    use.unknown = true;
    return result;
  }
  for (const SqlResult& one : result->results) use.changes += one.changes;
  // A message is a write: the branch must not be released after Commit.
  use.changes += static_cast<int64_t>(result->message_ids.size());
  return result;
}

absl::StatusOr<std::vector<std::string>> Transaction::Publish(
    AgentClient& agent, const std::vector<Message>& messages) {
  AgentUse& use = Use(agent);
  absl::StatusOr<std::vector<std::string>> ids = agent.Publish(txid_, messages);
  if (!ids.ok()) {
    use.unknown = true;
    return ids;
  }
  use.changes += static_cast<int64_t>(ids->size());
  return ids;
}

absl::StatusOr<SqlResult> Transaction::ExecuteOne(AgentClient& agent, const std::string& sql,
                                                  const std::vector<SqlValue>& params,
                                                  const ExecuteOptions& options) {
  absl::StatusOr<ExecuteResult> result = Execute(agent, {SqlStatement{sql, params}}, options);
  if (!result.ok()) return result.status();
  return std::move(result->results.front());
}

absl::StatusOr<CommitResult> Transaction::Commit() {
  absl::StatusOr<CommitResult> result = client_->Commit(txid_);
  if (!result.ok()) return result;
  for (const AgentUse& use : agents_) {
    if (use.changes == 0 && !use.unknown) (void)use.agent->Release(txid_);
  }
  return result;
}

absl::Status Transaction::Abort() {
  absl::Status status = client_->Abort(txid_);
  for (const AgentUse& use : agents_) {
    absl::StatusOr<ReleaseResult> released = use.agent->Release(txid_);
    if (status.ok() && !released.ok()) {
      status = absl::Status(released.status().code(),
                            absl::StrCat("aborted at the coordinator, but Release at an agent "
                                         "failed: ",
                                         released.status().message()));
    }
  }
  return status;
}

}  // namespace txcoord
