#include "sim/sim_participant_transport.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace txcoord::sim {
namespace {

using coordinator::BatchAnswer;
using coordinator::BatchEntry;
using coordinator::BranchOp;

// A vote as ParticipantClient::Prepare gives it: NO is ABORTED with the
// participant's reason, as the agent's gRPC service and transport make it.
absl::StatusOr<coordinator::Vote> VoteOf(participant::Vote vote) {
  switch (vote) {
    case participant::Vote::kYes:
      return coordinator::Vote::kYes;
    case participant::Vote::kReadOnly:
      return coordinator::Vote::kReadOnly;
    case participant::Vote::kNo:
      break;
  }
  return absl::AbortedError("voted NO: branch unknown or replaced");
}

participant::BranchOp ParticipantOp(BranchOp op) {
  switch (op) {
    case BranchOp::kPrepare:
      return participant::BranchOp::kPrepare;
    case BranchOp::kCommit:
      return participant::BranchOp::kCommit;
    case BranchOp::kAbort:
      return participant::BranchOp::kAbort;
  }
  return participant::BranchOp::kAbort;
}

absl::Status Unreachable(const std::string& endpoint) {
  return absl::UnavailableError(absl::StrCat("no participant at ", endpoint));
}

}  // namespace

SimParticipantTransport::SimParticipantTransport(EventLoop* loop, Network* net,
                                                 SimParticipantTransportOptions options)
    : loop_(loop), net_(net), options_(options) {}

void SimParticipantTransport::AddParticipant(const std::string& endpoint, ParticipantNode* node,
                                             bool knows_batch) {
  targets_[endpoint] = Target{node, knows_batch};
}

const SimParticipantTransport::Target* SimParticipantTransport::Find(
    const std::string& endpoint) const {
  auto it = targets_.find(endpoint);
  if (it != targets_.end()) return &it->second;
  loop_->Trace(
      absl::StrCat(net_->name(options_.from), " -> ", endpoint, " REFUSED (no such participant)"));
  return nullptr;
}

template <typename Reply>
void SimParticipantTransport::Send(const std::string& endpoint, const std::string& what,
                                   absl::Duration timeout,
                                   std::function<Reply(ParticipantNode*)> serve,
                                   std::function<void(Reply)> done) {
  const Target* target = Find(endpoint);
  if (target == nullptr) return done(Unreachable(endpoint));
  ParticipantNode* node = target->node;
  net_->Call<Reply>(
      options_.from, node->id(), what, timeout, /*idempotent=*/true,
      [node, serve = std::move(serve)](auto reply) { reply(serve(node)); }, std::move(done));
}

void SimParticipantTransport::Prepare(const std::string& endpoint, const std::string& txid,
                                      uint64_t branch_token, absl::Duration timeout,
                                      std::function<void(absl::StatusOr<coordinator::Vote>)> done) {
  Send<absl::StatusOr<participant::Vote>>(
      endpoint, absl::StrCat("Prepare ", txid), timeout,
      [txid, branch_token](ParticipantNode* node) { return node->Prepare(txid, branch_token); },
      [done = std::move(done)](absl::StatusOr<participant::Vote> vote) {
        if (!vote.ok()) return done(vote.status());
        done(VoteOf(*vote));
      });
}

void SimParticipantTransport::Commit(const std::string& endpoint, const std::string& txid,
                                     absl::Duration timeout,
                                     std::function<void(absl::Status)> done) {
  Send<absl::Status>(
      endpoint, absl::StrCat("Commit ", txid), timeout,
      [txid](ParticipantNode* node) { return node->Commit(txid); }, std::move(done));
}

void SimParticipantTransport::Abort(const std::string& endpoint, const std::string& txid,
                                    absl::Duration timeout,
                                    std::function<void(absl::Status)> done) {
  Send<absl::Status>(
      endpoint, absl::StrCat("Abort ", txid), timeout,
      [txid](ParticipantNode* node) { return node->Abort(txid); }, std::move(done));
}

void SimParticipantTransport::CommitOnePhase(const std::string& endpoint, const std::string& txid,
                                             uint64_t branch_token, absl::Duration timeout,
                                             std::function<void(absl::StatusOr<bool>)> done) {
  Send<absl::StatusOr<participant::Outcome>>(
      endpoint, absl::StrCat("CommitOnePhase ", txid), timeout,
      [txid, branch_token](ParticipantNode* node) {
        return node->CommitOnePhase(txid, branch_token);
      },
      [done = std::move(done)](absl::StatusOr<participant::Outcome> outcome) {
        if (!outcome.ok()) return done(outcome.status());
        done(*outcome == participant::Outcome::kCommitted);
      });
}

void SimParticipantTransport::Batch(
    const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
    std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) {
  const Target* target = Find(endpoint);
  if (target == nullptr) return done(Unreachable(endpoint));
  ParticipantNode* node = target->node;
  const bool knows_batch = target->knows_batch;
  std::vector<BranchOp> ops;
  std::vector<participant::BatchEntry> request;
  ops.reserve(entries.size());
  request.reserve(entries.size());
  for (BatchEntry& entry : entries) {
    ops.push_back(entry.op);
    request.push_back(participant::BatchEntry{ParticipantOp(entry.op), std::move(entry.txid),
                                              entry.branch_token});
  }
  const std::string what = absl::StrCat(
      "Batch [",
      absl::StrJoin(
          request, ", ",
          [&ops, i = size_t{0}](std::string* out, const participant::BatchEntry& entry) mutable {
            absl::StrAppend(out, BranchOpName(ops[i++]), " ", entry.txid);
          }),
      "]");
  using Reply = absl::StatusOr<std::vector<participant::BatchAnswer>>;
  net_->Call<Reply>(
      options_.from, node->id(), what, timeout, /*idempotent=*/true,
      [node, knows_batch, request = std::move(request)](auto reply) {
        if (!knows_batch) return reply(Reply(absl::UnimplementedError("unknown method Batch")));
        reply(Reply(node->Batch(request)));
      },
      [ops = std::move(ops), done = std::move(done)](Reply answers) {
        if (!answers.ok()) return done(answers.status());
        std::vector<BatchAnswer> out;
        out.reserve(answers->size());
        for (size_t i = 0; i < answers->size(); ++i) {
          const participant::BatchAnswer& answer = (*answers)[i];
          BatchAnswer& entry = out.emplace_back(BatchAnswer{answer.status});
          if (!answer.status.ok() || i >= ops.size() || ops[i] != BranchOp::kPrepare) continue;
          absl::StatusOr<coordinator::Vote> vote = VoteOf(answer.vote);
          if (vote.ok()) {
            entry.vote = *vote;
          } else {
            entry.status = vote.status();
          }
        }
        done(std::move(out));
      });
}

}  // namespace txcoord::sim
