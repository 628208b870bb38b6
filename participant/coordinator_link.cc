#include "participant/coordinator_link.h"

#include "common/grpc_util.h"

namespace txcoord::participant {

CoordinatorLink::CoordinatorLink(std::shared_ptr<grpc::Channel> channel,
                                 std::string participant_name, absl::Duration rpc_timeout)
    : stub_(v1::Coordinator::NewStub(std::move(channel))),
      name_(std::move(participant_name)),
      rpc_timeout_(rpc_timeout) {}

void CoordinatorLink::set_endpoint(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  endpoint_ = endpoint;
}

absl::Status CoordinatorLink::Enlist(const std::string& txid, uint64_t branch_token,
                                     bool prepared) {
  v1::EnlistRequest request;
  request.set_txid(txid);
  request.set_participant(name_);
  {
    absl::MutexLock lock(&mu_);
    request.set_endpoint(endpoint_);
  }
  request.set_prepared(prepared);
  request.set_branch_token(branch_token);
  v1::EnlistResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, rpc_timeout_);
  return FromGrpcStatus(stub_->Enlist(&context, request, &response));
}

absl::StatusOr<RemoteOutcome> CoordinatorLink::QueryOutcome(const std::string& txid) {
  v1::QueryOutcomeRequest request;
  request.set_txid(txid);
  request.set_participant(name_);
  v1::QueryOutcomeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, rpc_timeout_);
  grpc::Status status = stub_->QueryOutcome(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  switch (response.outcome()) {
    case v1::OUTCOME_COMMITTED: return RemoteOutcome::kCommitted;
    case v1::OUTCOME_ABORTED: return RemoteOutcome::kAborted;
    case v1::OUTCOME_PENDING: return RemoteOutcome::kPending;
    default: return absl::InternalError("coordinator sent no outcome");
  }
}

}  // namespace txcoord::participant
