#include "client/transaction.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace txcoord {

void NameBranch(const ExecuteResult& result, std::vector<NamedBranch>* named) {
  if (result.branch_token == 0) return;
  auto known = std::find_if(named->begin(), named->end(), [&result](const NamedBranch& n) {
    return n.participant == result.participant;
  });
  if (known == named->end()) {
    named->push_back({result.participant, result.branch_token, result.endpoint, result.vote_proof});
  } else if (known->branch_token == result.branch_token && !result.vote_proof.empty()) {
    // The branch's prepare, after earlier writes in it: its signed vote.
    known->endpoint = result.endpoint;
    known->vote_proof = result.vote_proof;
  }
}

Transaction::Transaction(Client& client, std::string txid, bool name_branches)
    : client_(&client), txid_(std::move(txid)), name_branches_(name_branches) {}

ExecuteOptions Transaction::Sent(const ExecuteOptions& options) const {
  ExecuteOptions sent = options;
  sent.named_in_commit = name_branches_;
  sent.carries_vote_proof = name_branches_;  // Commit names the branch with its proof
  return sent;
}

Transaction::AgentUse& Transaction::Use(AgentClient& agent) {
  for (AgentUse& use : agents_) {
    if (use.agent == &agent) return use;
  }
  return agents_.emplace_back(AgentUse{&agent});
}

absl::StatusOr<ExecuteResult> Transaction::Execute(AgentClient& agent,
                                                   const std::vector<SqlStatement>& statements,
                                                   const ExecuteOptions& options) {
  Use(agent);
  absl::StatusOr<ExecuteResult> result = agent.Execute(txid_, statements, Sent(options));
  Record(agent, result, options.prepare);
  return result;
}

void Transaction::Record(AgentClient& agent, const absl::StatusOr<ExecuteResult>& result,
                         bool prepare) {
  AgentUse& use = Use(agent);
  if (!result.ok()) {
    use.unknown = true;
    if (prepare && use.failed_prepare.empty()) use.failed_prepare = result.status().ToString();
    client_->NoteRefused(txid_, result.status(), /*from_coordinator=*/false);
    return;
  }
  NameBranch(*result, &named_);
  for (const SqlResult& one : result->results) use.changes += one.changes;
  // A message is a write: the branch must not be released after Commit.
  use.changes += static_cast<int64_t>(result->message_ids.size());
}

std::vector<absl::StatusOr<ExecuteResult>> Transaction::ExecuteAll(
    const std::vector<Branch>& branches) {
  absl::flat_hash_set<AgentClient*> agents;
  for (const Branch& branch : branches) {
    if (branch.agent == nullptr || !agents.insert(branch.agent).second) {
      const absl::Status refused = absl::InvalidArgumentError(
          "ExecuteAll: every branch needs an agent of its own (a missing or repeated agent)");
      return std::vector<absl::StatusOr<ExecuteResult>>(branches.size(), refused);
    }
  }
  ExecuteRound round;
  for (const Branch& branch : branches) {
    Use(*branch.agent);
    round.Start(*branch.agent, txid_, branch.statements, Sent(branch.options));
  }
  std::vector<absl::StatusOr<ExecuteResult>> results = round.Wait();
  for (size_t i = 0; i < branches.size(); ++i) {
    Record(*branches[i].agent, results[i], branches[i].options.prepare);
  }
  return results;
}

absl::StatusOr<std::vector<std::string>> Transaction::Publish(
    AgentClient& agent, const std::vector<Message>& messages) {
  if (name_branches_) {
    // An Execute with messages only: its answer names the branch, which
    // the Commit must name too.
    ExecuteOptions options;
    options.messages = messages;
    absl::StatusOr<ExecuteResult> result = Execute(agent, {}, options);
    if (!result.ok()) return result.status();
    return std::move(result->message_ids);
  }
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
  for (const AgentUse& use : agents_) {
    if (use.failed_prepare.empty()) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "transaction ", txid_, " must not commit: an Execute with prepare failed (",
        use.failed_prepare,
        "), so that branch may be prepared without the coordinator knowing it; Abort the "
        "transaction and retry it whole"));
  }
  absl::StatusOr<CommitResult> result =
      name_branches_ ? client_->Commit(txid_, named_) : client_->Commit(txid_);
  if (!result.ok()) return result;
  for (const AgentUse& use : agents_) {
    if (use.changes == 0 && !use.unknown) (void)use.agent->Release(txid_);
  }
  return result;
}

absl::Status Transaction::Abort() {
  absl::Status status = client_->Abort(txid_, named_);
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
