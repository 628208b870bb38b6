#include "agent/agent_admin_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/txid.h"
#include "common/utf8.h"
#include "rpc/access_policy.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {
namespace {

v1::Outcome ToProto(Outcome outcome) {
  return outcome == Outcome::kCommitted ? v1::OUTCOME_COMMITTED : v1::OUTCOME_ABORTED;
}

void ToProto(const HeuristicDecision& in, v1::HeuristicDecision* out) {
  out->set_txid(in.txid);
  out->set_coordinator(in.coordinator);
  out->set_decision(ToProto(in.decision));
  out->set_decided_unix_ms(absl::ToUnixMillis(in.decided_at));
  out->set_reason(in.reason);
  if (in.coordinator_outcome.has_value()) {
    out->set_coordinator_outcome(ToProto(*in.coordinator_outcome));
  }
  out->set_heuristic_mixed(in.mixed);
}

}  // namespace

grpc::Status AgentAdminService::ListInDoubt(grpc::ServerContext* context,
                                            const v1::ListInDoubtRequest* request,
                                            v1::ListInDoubtResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/ListInDoubt");
      !admitted.ok()) {
    return admitted;
  }
  const absl::Time now = absl::Now();
  for (const PreparedBranch& branch : participant_->ListPrepared()) {
    v1::InDoubtBranch* out = response->add_branches();
    out->set_txid(branch.txid);
    out->set_coordinator(branch.coordinator);
    out->set_prepared_unix_ms(absl::ToUnixMillis(branch.prepared_at));
    out->set_age_ms(absl::ToInt64Milliseconds(now - branch.prepared_at));
    out->set_vote(branch.vote_sending   ? v1::IN_DOUBT_VOTE_SENDING
                  : branch.vote_unsent  ? v1::IN_DOUBT_VOTE_SIGNED
                  : branch.vote_refused ? v1::IN_DOUBT_VOTE_REFUSED
                                        : v1::IN_DOUBT_VOTE_SENT);
  }
  response->set_participant(name_);
  response->set_coordinator_address(coordinator_address_);
  return grpc::Status::OK;
}

grpc::Status AgentAdminService::ResolveBranch(grpc::ServerContext* context,
                                              const v1::ResolveBranchRequest* request,
                                              v1::HeuristicDecision* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/ResolveBranch");
      !admitted.ok()) {
    return admitted;
  }
  if (grpc::Status s = ToGrpcStatus(ParseTxid(request->txid()).status()); !s.ok()) return s;
  Outcome decision;
  switch (request->decision()) {
    case v1::OUTCOME_COMMITTED:
      decision = Outcome::kCommitted;
      break;
    case v1::OUTCOME_ABORTED:
      decision = Outcome::kAborted;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "decision must be OUTCOME_COMMITTED or OUTCOME_ABORTED");
  }
  if (request->reason().size() > kMaxReasonBytes) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("reason is ", request->reason().size(), " bytes: at most ", kMaxReasonBytes));
  }
  if (grpc::Status s = ToGrpcStatus(CheckUtf8("reason", request->reason())); !s.ok()) return s;
  absl::StatusOr<HeuristicDecision> decided =
      participant_->ResolveHeuristically(request->txid(), decision, request->reason());
  if (!decided.ok()) return ToGrpcStatus(decided.status());
  ToProto(*decided, response);
  return grpc::Status::OK;
}

grpc::Status AgentAdminService::ListHeuristics(grpc::ServerContext* context,
                                               const v1::ListHeuristicsRequest* request,
                                               v1::ListHeuristicsResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/ListHeuristics");
      !admitted.ok()) {
    return admitted;
  }
  absl::StatusOr<std::vector<HeuristicDecision>> decisions = participant_->ListHeuristics();
  if (!decisions.ok()) return ToGrpcStatus(decisions.status());
  for (const HeuristicDecision& decision : *decisions) {
    if (request->mixed_only() && !decision.mixed) continue;
    ToProto(decision, response->add_decisions());
  }
  return grpc::Status::OK;
}

}  // namespace txcoord::participant
