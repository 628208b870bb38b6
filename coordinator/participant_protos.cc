#include "coordinator/participant_protos.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_util.h"

namespace txcoord::coordinator {
namespace {

absl::StatusOr<Vote> VoteOf(v1::Vote vote, const std::string& reason) {
  switch (vote) {
    case v1::VOTE_YES:
      return Vote::kYes;
    case v1::VOTE_READ_ONLY:
      return Vote::kReadOnly;
    case v1::VOTE_NO:
      return absl::AbortedError(reason.empty() ? "voted NO" : "voted NO: " + reason);
    default:
      return absl::InternalError("participant sent no vote");
  }
}

v1::BatchRequest::Kind KindOf(BranchOp op) {
  switch (op) {
    case BranchOp::kPrepare:
      return v1::BatchRequest::KIND_PREPARE;
    case BranchOp::kCommit:
      return v1::BatchRequest::KIND_COMMIT;
    case BranchOp::kAbort:
      return v1::BatchRequest::KIND_ABORT;
  }
  return v1::BatchRequest::KIND_UNSPECIFIED;
}

// One batch answer as the entry's own call would have returned it.
BatchAnswer AnswerOf(BranchOp op, const v1::BatchResponse::Answer& answer) {
  BatchAnswer out{StatusOfAnswer(answer)};
  if (!out.status.ok() || op != BranchOp::kPrepare) return out;
  absl::StatusOr<Vote> vote = VoteOf(answer.vote(), answer.reason());
  if (vote.ok()) {
    out.vote = *vote;
  } else {
    out.status = vote.status();
  }
  return out;
}

}  // namespace

absl::StatusOr<Vote> VoteOfProto(const v1::PrepareResponse& response) {
  return VoteOf(response.vote(), response.reason());
}

absl::StatusOr<bool> OnePhaseOutcomeOf(const v1::CommitOnePhaseResponse& response) {
  switch (response.outcome()) {
    case v1::OUTCOME_COMMITTED:
      return true;
    case v1::OUTCOME_ABORTED:
      return false;
    default:
      return absl::InternalError("participant sent no one-phase outcome");
  }
}

v1::BatchRequest BatchRequestOf(std::vector<BatchEntry> entries, std::vector<BranchOp>* ops) {
  v1::BatchRequest request;
  ops->reserve(entries.size());
  for (BatchEntry& entry : entries) {
    v1::BatchRequest::Entry* out = request.add_entries();
    out->set_kind(KindOf(entry.op));
    out->set_txid(std::move(entry.txid));
    out->set_branch_token(entry.branch_token);
    ops->push_back(entry.op);
  }
  return request;
}

absl::StatusOr<std::vector<BatchAnswer>> BatchAnswersOf(const std::vector<BranchOp>& ops,
                                                        const v1::BatchResponse& response) {
  const int count = response.answers_size();
  if (count != static_cast<int>(ops.size())) {
    return absl::InternalError(
        absl::StrCat("participant answered ", count, " of ", ops.size(), " batch entries"));
  }
  std::vector<BatchAnswer> answers;
  answers.reserve(count);
  for (int i = 0; i < count; ++i) answers.push_back(AnswerOf(ops[i], response.answers(i)));
  return answers;
}

}  // namespace txcoord::coordinator
