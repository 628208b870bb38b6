#include "coordinator/grpc_participant_client.h"

#include "common/grpc_util.h"

namespace txcoord::coordinator {
namespace {

// One in-flight call: owns what the callback API needs until it completes.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

}  // namespace

GrpcParticipantClient::GrpcParticipantClient(std::shared_ptr<grpc::ChannelCredentials> credentials)
    : credentials_(std::move(credentials)) {}

v1::Participant::Stub* GrpcParticipantClient::StubFor(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  auto& stub = stubs_[endpoint];
  if (!stub) stub = v1::Participant::NewStub(MakeChannel(endpoint, credentials_));
  return stub.get();
}

void GrpcParticipantClient::Prepare(const BranchRef& branch, const std::string& txid,
                                    absl::Duration timeout,
                                    std::function<void(absl::StatusOr<Vote>)> done) {
  auto* call = new Call<v1::PrepareRequest, v1::PrepareResponse>;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch.token);
  SetDeadline(&call->context, timeout);
  StubFor(branch.endpoint)->async()->Prepare(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call<v1::PrepareRequest, v1::PrepareResponse>> owned(call);
        if (!status.ok()) return done(FromGrpcStatus(status));
        switch (call->response.vote()) {
          case v1::VOTE_YES: return done(Vote::kYes);
          case v1::VOTE_READ_ONLY: return done(Vote::kReadOnly);
          case v1::VOTE_NO:
            return done(absl::AbortedError(call->response.reason().empty()
                                               ? "voted NO"
                                               : "voted NO: " + call->response.reason()));
          default: return done(absl::InternalError("participant sent no vote"));
        }
      });
}

void GrpcParticipantClient::Commit(const BranchRef& branch, const std::string& txid,
                                   absl::Duration timeout, std::function<void(absl::Status)> done) {
  auto* call = new Call<v1::BranchRequest, v1::BranchResponse>;
  call->request.set_txid(txid);
  SetDeadline(&call->context, timeout);
  StubFor(branch.endpoint)->async()->Commit(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call<v1::BranchRequest, v1::BranchResponse>> owned(call);
        done(FromGrpcStatus(status));
      });
}

void GrpcParticipantClient::Abort(const BranchRef& branch, const std::string& txid,
                                  absl::Duration timeout, std::function<void(absl::Status)> done) {
  auto* call = new Call<v1::BranchRequest, v1::BranchResponse>;
  call->request.set_txid(txid);
  SetDeadline(&call->context, timeout);
  StubFor(branch.endpoint)->async()->Abort(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call<v1::BranchRequest, v1::BranchResponse>> owned(call);
        if (done) done(FromGrpcStatus(status));
      });
}

void GrpcParticipantClient::CommitOnePhase(const BranchRef& branch, const std::string& txid,
                                           absl::Duration timeout,
                                           std::function<void(absl::StatusOr<bool>)> done) {
  auto* call = new Call<v1::BranchRequest, v1::CommitOnePhaseResponse>;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch.token);
  SetDeadline(&call->context, timeout);
  StubFor(branch.endpoint)->async()->CommitOnePhase(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call<v1::BranchRequest, v1::CommitOnePhaseResponse>> owned(call);
        if (!status.ok()) return done(FromGrpcStatus(status));
        switch (call->response.outcome()) {
          case v1::OUTCOME_COMMITTED: return done(true);
          case v1::OUTCOME_ABORTED: return done(false);
          default: return done(absl::InternalError("participant sent no one-phase outcome"));
        }
      });
}

}  // namespace txcoord::coordinator
