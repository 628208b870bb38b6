#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/txid.h"
#include "coordinator/wal/decision_log.h"
#include "rpc/frame.h"
#include "rpc/frame_handler.h"
#include "rpc/grpc_util.h"

namespace txcoord::coordinator {
namespace {

constexpr uint32_t kMaxTimeoutMs = 3600 * 1000;

// BeginRequest.timeout_ms and ReserveTxidsRequest.timeout_ms.
grpc::Status CheckTimeoutMs(uint32_t timeout_ms) {
  if (timeout_ms <= kMaxTimeoutMs) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "timeout_ms is over the limit of 3600000 (one hour)");
}
// A Commit with no deadline from the client still returns eventually.
constexpr absl::Duration kDefaultCommitWait = absl::Seconds(60);

int64_t UnixMillis(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToUnixMillis(t);
}

v1::TxState ToProto(TxState state) {
  switch (state) {
    case TxState::kActive:
      return v1::TX_STATE_ACTIVE;
    case TxState::kPreparing:
      return v1::TX_STATE_PREPARING;
    case TxState::kCommitting:
      return v1::TX_STATE_COMMITTING;
    case TxState::kCommitted:
      return v1::TX_STATE_COMMITTED;
    case TxState::kAborted:
      return v1::TX_STATE_ABORTED;
  }
  return v1::TX_STATE_UNSPECIFIED;
}

v1::Vote ToProto(Vote vote) {
  switch (vote) {
    case Vote::kUnknown:
      return v1::VOTE_UNSPECIFIED;
    case Vote::kYes:
      return v1::VOTE_YES;
    case Vote::kNo:
      return v1::VOTE_NO;
    case Vote::kReadOnly:
      return v1::VOTE_READ_ONLY;
  }
  return v1::VOTE_UNSPECIFIED;
}

// The caller's deadline; InfiniteFuture when it set none.
absl::Time DeadlineOf(const grpc::ServerContextBase* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

std::vector<NamedBranch> NamedOf(
    const google::protobuf::RepeatedPtrField<v1::NamedBranch>& branches) {
  std::vector<NamedBranch> named;
  named.reserve(branches.size());
  for (const v1::NamedBranch& branch : branches) {
    named.push_back(
        NamedBranch{BranchRef{branch.participant(), branch.endpoint(), branch.branch_token()},
                    branch.vote_proof()});
  }
  return named;
}

}  // namespace

void ToProto(const TransactionView& view, v1::Transaction* out) {
  out->set_txid(view.txid);
  out->set_state(ToProto(view.state));
  out->set_begin_unix_ms(UnixMillis(view.begin));
  out->set_deadline_unix_ms(view.state == TxState::kActive || view.state == TxState::kPreparing
                                ? UnixMillis(view.deadline)
                                : 0);
  out->set_reason(view.reason);
  out->set_decided_unix_ms(UnixMillis(view.decided));
  for (const BranchView& b : view.branches) {
    v1::Branch* branch = out->add_branches();
    branch->set_participant(b.ref.participant);
    branch->set_endpoint(b.ref.endpoint);
    branch->set_vote(ToProto(b.vote));
    branch->set_acknowledged(b.acknowledged);
    branch->set_phase2_attempts(b.phase2_attempts);
    branch->set_last_error(b.last_error);
    branch->set_heuristic(b.heuristic);
    branch->set_heuristic_mixed(b.heuristic_mixed);
    branch->set_last_attempt_unix_ms(UnixMillis(b.last_attempt));
    branch->set_awaited(b.awaited);
  }
}

grpc::Status CoordinatorService::AdmitName(const grpc::ServerContextBase& context,
                                           absl::string_view method,
                                           absl::string_view participant) const {
  if (policy_ == nullptr) return grpc::Status::OK;
  return ToGrpcStatus(policy_->AdmitParticipant(absl::StrCat("/txcoord.v1.Coordinator/", method),
                                                participant, CallerOf(context)));
}

grpc::Status CoordinatorService::ServeBegin(const v1::BeginRequest* request,
                                            v1::BeginResponse* response) {
  if (grpc::Status s = CheckTimeoutMs(request->timeout_ms()); !s.ok()) return s;
  absl::StatusOr<BeginResult> begun = runtime_->Begin(absl::Milliseconds(request->timeout_ms()));
  if (!begun.ok()) return ToGrpcStatus(begun.status());
  response->set_txid(begun->txid);
  response->set_deadline_unix_ms(absl::ToUnixMillis(begun->deadline));
  response->set_checks_named_branches(true);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ServeReserveTxids(const v1::ReserveTxidsRequest* request,
                                                   v1::ReserveTxidsResponse* response) {
  if (grpc::Status s = CheckTimeoutMs(request->timeout_ms()); !s.ok()) return s;
  absl::StatusOr<ReserveResult> reserved =
      runtime_->Reserve(request->count(), absl::Milliseconds(request->timeout_ms()));
  if (!reserved.ok()) return ToGrpcStatus(reserved.status());
  response->set_cluster(reserved->cluster);
  response->set_epoch(reserved->epoch);
  response->set_first_sequence(reserved->first_sequence);
  response->set_count(reserved->count);
  response->set_valid_for_ms(static_cast<uint32_t>(
      std::min<int64_t>(absl::ToInt64Milliseconds(reserved->valid_for), UINT32_MAX)));
  response->set_checks_named_branches(true);
  return grpc::Status::OK;
}

absl::Status CoordinatorService::EnlistOne(const v1::EnlistRequest& request) {
  if (!request.framed_endpoint().empty() && !IsValidEndpoint(request.framed_endpoint())) {
    return absl::InvalidArgumentError(
        "framed_endpoint must be empty or host:port (at most 256 bytes; host of [A-Za-z0-9_.-] "
        "or a bracketed IPv6 address; port 1 to 65535)");
  }
  absl::Status enlisted = runtime_->Enlist(
      request.txid(), BranchRef{request.participant(), request.endpoint(), request.branch_token()},
      request.prepared(), request.named_in_commit());
  if (enlisted.ok() && on_framed_endpoint_) {
    on_framed_endpoint_(request.endpoint(), request.framed_endpoint());
  }
  return enlisted;
}

grpc::Status CoordinatorService::ServeEnlist(const v1::EnlistRequest* request,
                                             v1::EnlistResponse* response) {
  if (absl::Status s = EnlistOne(*request); !s.ok()) return ToGrpcStatus(s);
  // Only to the caller that enlisted under this name (AdmitName).
  response->set_vote_key(runtime_->VoteKey(request->participant()));
  absl::MutexLock lock(&mu_);
  response->set_framed_endpoint(framed_endpoint_);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ServeEnlistBatch(const v1::EnlistBatchRequest* request,
                                                  v1::EnlistBatchResponse* response) {
  if (grpc::Status s = CheckBatchSize(request->enlistments_size(), "enlistments"); !s.ok()) {
    return s;
  }
  for (const v1::EnlistRequest& enlistment : request->enlistments()) {
    const absl::Status s = EnlistOne(enlistment);
    v1::EnlistBatchResponse::Answer* answer = response->add_answers();
    SetAnswerStatus(s, answer);
    if (s.ok()) answer->set_vote_key(runtime_->VoteKey(enlistment.participant()));
  }
  absl::MutexLock lock(&mu_);
  response->set_framed_endpoint(framed_endpoint_);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* CoordinatorService::Commit(grpc::CallbackServerContext* context,
                                                     const v1::CommitRequest* request,
                                                     v1::CommitResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The reactor and `response` live until Finish.
  ServeCommit(*request, DeadlineOf(context), response,
              [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
  return reactor;
}

std::vector<std::pair<FrameMethod, FrameServer::Handler>> CoordinatorService::FramedCalls(
    InflightTracker* inflight) {
  // No participant-name check on Enlist here (AdmitName): names are bound
  // to identities only under mutual TLS, which a framed port never has.
  return {
      {FrameMethod::kCoordinatorCommit,
       UnaryFrameHandler<v1::CommitRequest, v1::CommitResponse>(
           FrameMethod::kCoordinatorCommit, "/txcoord.v1.Coordinator/Commit", policy_, inflight,
           [this](const v1::CommitRequest& request, absl::Time deadline,
                  v1::CommitResponse* response) {
             // This thread waits for the decision anyway: it may write the
             // decision's log record itself.
             wal::WriteHereScope write_here;
             absl::Notification decided;
             absl::Status status;
             ServeCommit(request, deadline, response, [&](absl::Status answer) {
               status = std::move(answer);
               decided.Notify();
             });
             decided.WaitForNotification();
             return status;
           })},
      {FrameMethod::kCoordinatorEnlist,
       UnaryFrameHandler<v1::EnlistRequest, v1::EnlistResponse>(
           FrameMethod::kCoordinatorEnlist, "/txcoord.v1.Coordinator/Enlist", policy_, inflight,
           [this](const v1::EnlistRequest& request, absl::Time, v1::EnlistResponse* response) {
             return FromGrpcStatus(ServeEnlist(&request, response));
           })},
      {FrameMethod::kCoordinatorEnlistBatch,
       UnaryFrameHandler<v1::EnlistBatchRequest, v1::EnlistBatchResponse>(
           FrameMethod::kCoordinatorEnlistBatch, "/txcoord.v1.Coordinator/EnlistBatch", policy_,
           inflight,
           [this](const v1::EnlistBatchRequest& request, absl::Time,
                  v1::EnlistBatchResponse* response) {
             return FromGrpcStatus(ServeEnlistBatch(&request, response));
           })},
  };
}

void CoordinatorService::ServeCommit(const v1::CommitRequest& request, absl::Time deadline,
                                     v1::CommitResponse* response,
                                     std::function<void(absl::Status)> done) {
  std::vector<NamedBranch> named = NamedOf(request.branches());
  // A call without a deadline still gets its answer in the end.
  if (deadline == absl::InfiniteFuture()) deadline = absl::Now() + kDefaultCommitWait;
  // The runtime calls back exactly once, also when the deadline passes
  // first.
  runtime_->CommitAsync(
      request.txid(), std::move(named), deadline,
      [response, done = std::move(done),
       epoch = runtime_->epoch()](absl::StatusOr<CommitResult> result) {
        if (!result.ok()) {
          done(result.status());
          return;
        }
        response->set_outcome(result->committed ? v1::OUTCOME_COMMITTED : v1::OUTCOME_ABORTED);
        response->set_reason(result->reason);
        response->set_coordinator_epoch(epoch);
        done(absl::OkStatus());
      });
}

grpc::Status CoordinatorService::ServeAbort(const v1::AbortRequest* request,
                                            v1::AbortResponse* response) {
  if (absl::Status aborted = runtime_->Abort(request->txid(), NamedOf(request->branches()));
      !aborted.ok()) {
    return ToGrpcStatus(aborted);
  }
  response->set_coordinator_epoch(runtime_->epoch());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ServeGetTransaction(const v1::GetTransactionRequest* request,
                                                     v1::Transaction* response) {
  absl::StatusOr<TransactionView> view = runtime_->Describe(request->txid());
  if (!view.ok()) return ToGrpcStatus(view.status());
  ToProto(*view, response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ServeQueryOutcome(const v1::QueryOutcomeRequest* request,
                                                   v1::QueryOutcomeResponse* response) {
  // Unlike Enlist's, this name reaches no check in the engine (an unknown
  // one is simply not part of the commit); refuse junk here.
  if (!IsValidName(request->participant())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "participant must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  absl::StatusOr<Outcome> outcome = runtime_->QueryOutcome(request->txid(), request->participant());
  if (!outcome.ok()) return ToGrpcStatus(outcome.status());
  switch (*outcome) {
    case Outcome::kCommitted:
      response->set_outcome(v1::OUTCOME_COMMITTED);
      break;
    case Outcome::kAborted:
      response->set_outcome(v1::OUTCOME_ABORTED);
      break;
    case Outcome::kPending:
      response->set_outcome(v1::OUTCOME_PENDING);
      break;
  }
  return grpc::Status::OK;
}

}  // namespace txcoord::coordinator
