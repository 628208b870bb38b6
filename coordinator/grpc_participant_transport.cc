#include "coordinator/grpc_participant_transport.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/participant_protos.h"
#include "rpc/grpc_util.h"

namespace txcoord::coordinator {
namespace {

// One call in flight: what the callback API needs until it completes, and
// whom its completion answers.
template <typename Request, typename Response, typename Done>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
  Done done;
};

// absl::Now() + timeout saturates; a chrono sum would overflow for an
// infinite timeout.
void SetCallDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

GrpcParticipantTransport::GrpcParticipantTransport(
    std::shared_ptr<grpc::ChannelCredentials> credentials)
    : credentials_(std::move(credentials)) {}

v1::Participant::Stub* GrpcParticipantTransport::StubFor(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<v1::Participant::Stub>& stub = stubs_[endpoint];
  if (!stub) stub = v1::Participant::NewStub(MakeChannel(endpoint, credentials_));
  return stub.get();
}

int GrpcParticipantTransport::max_batch_entries() const { return kMaxBatchEntries; }

void GrpcParticipantTransport::Prepare(const std::string& endpoint, const std::string& txid,
                                       uint64_t branch_token, absl::Duration timeout,
                                       std::function<void(absl::StatusOr<Vote>)> done) {
  using PrepareCall =
      Call<v1::PrepareRequest, v1::PrepareResponse, std::function<void(absl::StatusOr<Vote>)>>;
  auto* call = new PrepareCall;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch_token);
  SetCallDeadline(&call->context, timeout);
  call->done = std::move(done);
  StubFor(endpoint)->async()->Prepare(&call->context, &call->request, &call->response,
                                      [call](grpc::Status status) {
                                        std::unique_ptr<PrepareCall> owned(call);
                                        if (!status.ok()) return call->done(FromGrpcStatus(status));
                                        call->done(VoteOfProto(call->response));
                                      });
}

void GrpcParticipantTransport::Commit(const std::string& endpoint, const std::string& txid,
                                      absl::Duration timeout,
                                      std::function<void(absl::Status)> done) {
  Phase2(/*commit=*/true, endpoint, txid, timeout, std::move(done));
}

void GrpcParticipantTransport::Abort(const std::string& endpoint, const std::string& txid,
                                     absl::Duration timeout,
                                     std::function<void(absl::Status)> done) {
  Phase2(/*commit=*/false, endpoint, txid, timeout, std::move(done));
}

void GrpcParticipantTransport::Phase2(bool commit, const std::string& endpoint,
                                      const std::string& txid, absl::Duration timeout,
                                      std::function<void(absl::Status)> done) {
  using BranchCall = Call<v1::BranchRequest, v1::BranchResponse, std::function<void(absl::Status)>>;
  auto* call = new BranchCall;
  call->request.set_txid(txid);
  SetCallDeadline(&call->context, timeout);
  call->done = std::move(done);
  auto on_done = [call](grpc::Status status) {
    std::unique_ptr<BranchCall> owned(call);
    call->done(FromGrpcStatus(status));
  };
  v1::Participant::Stub* stub = StubFor(endpoint);
  if (commit) {
    stub->async()->Commit(&call->context, &call->request, &call->response, std::move(on_done));
  } else {
    stub->async()->Abort(&call->context, &call->request, &call->response, std::move(on_done));
  }
}

void GrpcParticipantTransport::CommitOnePhase(const std::string& endpoint, const std::string& txid,
                                              uint64_t branch_token, absl::Duration timeout,
                                              std::function<void(absl::StatusOr<bool>)> done) {
  using OnePhase = Call<v1::BranchRequest, v1::CommitOnePhaseResponse,
                        std::function<void(absl::StatusOr<bool>)>>;
  auto* call = new OnePhase;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch_token);
  SetCallDeadline(&call->context, timeout);
  call->done = std::move(done);
  StubFor(endpoint)->async()->CommitOnePhase(&call->context, &call->request, &call->response,
                                             [call](grpc::Status status) {
                                               std::unique_ptr<OnePhase> owned(call);
                                               if (!status.ok())
                                                 return call->done(FromGrpcStatus(status));
                                               call->done(OnePhaseOutcomeOf(call->response));
                                             });
}

void GrpcParticipantTransport::Batch(
    const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
    std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) {
  struct Pending {
    std::vector<BranchOp> ops;  // of the entries, in order
    std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done;
  };
  using BatchCall = Call<v1::BatchRequest, v1::BatchResponse, Pending>;
  auto* call = new BatchCall;
  call->request = BatchRequestOf(std::move(entries), &call->done.ops);
  SetCallDeadline(&call->context, timeout);
  call->done.done = std::move(done);
  StubFor(endpoint)->async()->Batch(&call->context, &call->request, &call->response,
                                    [call](grpc::Status status) {
                                      std::unique_ptr<BatchCall> owned(call);
                                      Pending& pending = call->done;
                                      if (!status.ok()) return pending.done(FromGrpcStatus(status));
                                      pending.done(BatchAnswersOf(pending.ops, call->response));
                                    });
}

}  // namespace txcoord::coordinator
