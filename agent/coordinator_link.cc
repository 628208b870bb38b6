#include "agent/coordinator_link.h"

#include <algorithm>
#include <cstddef>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {

CoordinatorLink::CoordinatorLink(std::shared_ptr<grpc::Channel> channel,
                                 std::string participant_name, absl::Duration rpc_timeout,
                                 Clock* clock)
    : stub_(v1::Coordinator::NewStub(std::move(channel))),
      name_(std::move(participant_name)),
      rpc_timeout_(rpc_timeout),
      clock_(clock) {}

namespace {

// What each of an EnlistBatch's `n` entries ended with: its answer, or the
// call's error for all (also when the count of answers is wrong).
std::vector<absl::Status> AnswersOf(grpc::Status status, const v1::EnlistBatchResponse& response,
                                    size_t n) {
  if (status.ok() && response.answers_size() != static_cast<int>(n)) {
    status = grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("coordinator answered ", response.answers_size(), " of ", n, " enlistments"));
  }
  std::vector<absl::Status> results(n, FromGrpcStatus(status));
  if (!status.ok()) return results;
  for (size_t i = 0; i < n; ++i) results[i] = StatusOfAnswer(response.answers(static_cast<int>(i)));
  return results;
}

}  // namespace

CoordinatorLink::~CoordinatorLink() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &async_in_flight_));
}

bool CoordinatorLink::AwaitAsyncEnlists(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  // A queued enlistment is sent by the end of one in flight before that
  // one leaves the count, so none in flight means none queued either.
  return mu_.AwaitWithDeadline(
      absl::Condition(
          +[](int* in_flight) { return *in_flight == 0; }, &async_in_flight_),
      deadline);
}

void CoordinatorLink::EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                                  std::function<void(absl::Status)> done) {
  Queued q{v1::EnlistRequest(), std::move(done)};
  q.request.set_txid(txid);
  q.request.set_participant(name_);
  q.request.set_prepared(prepared);
  q.request.set_branch_token(branch_token);
  q.request.set_named_in_commit(true);  // only named Executes enlist without waiting
  std::vector<Queued> batch;
  {
    absl::MutexLock lock(&mu_);
    q.request.set_endpoint(endpoint_);
    q.request.set_framed_endpoint(framed_endpoint_);
    if (async_in_flight_ >= kMaxEnlistsInFlight) {
      queued_.push_back(std::move(q));
      return;
    }
    ++async_in_flight_;
  }
  batch.push_back(std::move(q));
  SendAsync(std::move(batch));
}

void CoordinatorLink::SendAsync(std::vector<Queued> batch) {
  // Lives until the RPC's end, which takes it over.
  struct Call {
    grpc::ClientContext context;
    v1::EnlistRequest one;
    v1::EnlistResponse one_response;
    v1::EnlistBatchRequest many;
    v1::EnlistBatchResponse many_response;
    std::vector<Queued> batch;
  };
  auto* call = new Call;
  SetDeadline(&call->context, rpc_timeout_);
  call->batch = std::move(batch);
  auto finish = [this, call](const grpc::Status& status) {
    std::unique_ptr<Call> owned(call);
    const size_t n = owned->batch.size();
    const std::vector<absl::Status> results =
        n == 1 ? std::vector<absl::Status>{FromGrpcStatus(status)}
               : AnswersOf(status, owned->many_response, n);
    if (n == 1) {
      if (status.ok()) vote_key_.Note(owned->one.txid(), owned->one_response.vote_key());
    } else {
      NoteVoteKeys(owned->many, owned->many_response, results);
    }
    if (n > 1) {
      // Counted before anyone hears an answer: the counts then already
      // hold what a caller saw.
      absl::MutexLock lock(&mu_);
      ++batches_sent_;
      batched_enlistments_ += static_cast<int64_t>(n);
    }
    for (size_t i = 0; i < n; ++i) owned->batch[i].done(results[i]);
    std::vector<Queued> next;
    {
      absl::MutexLock lock(&mu_);
      if (queued_.empty()) {
        --async_in_flight_;  // the last use of `this` on this path
        return;
      }
      // At most a batch's worth: the coordinator refuses a larger one
      // whole, and everything queued behind a stall would then fail.
      const size_t take = std::min(queued_.size(), static_cast<size_t>(kMaxEnlistBatch));
      next.assign(std::make_move_iterator(queued_.begin()),
                  std::make_move_iterator(queued_.begin() + static_cast<std::ptrdiff_t>(take)));
      queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(take));
    }
    SendAsync(std::move(next));
  };
  if (call->batch.size() == 1) {
    call->one = std::move(call->batch.front().request);
    stub_->async()->Enlist(&call->context, &call->one, &call->one_response, std::move(finish));
    return;
  }
  for (Queued& q : call->batch) *call->many.add_enlistments() = std::move(q.request);
  stub_->async()->EnlistBatch(&call->context, &call->many, &call->many_response, std::move(finish));
}

void CoordinatorLink::set_endpoint(const std::string& endpoint,
                                   const std::string& framed_endpoint) {
  absl::MutexLock lock(&mu_);
  endpoint_ = endpoint;
  framed_endpoint_ = framed_endpoint;
}

absl::Status CoordinatorLink::Enlist(const std::string& txid, uint64_t branch_token,
                                     bool prepared) {
  Waiter me;
  me.request.set_txid(txid);
  me.request.set_participant(name_);
  me.request.set_prepared(prepared);
  me.request.set_branch_token(branch_token);
  {
    absl::MutexLock lock(&mu_);
    me.request.set_endpoint(endpoint_);
    me.request.set_framed_endpoint(framed_endpoint_);
    if (clock_->Now() < singles_until_) {
      me.send_alone = true;
    } else if (in_flight_ < kMaxEnlistsInFlight) {
      ++in_flight_;
    } else {
      waiting_.push_back(&me);
      mu_.Await(absl::Condition(
          +[](Waiter* w) { return w->answered || w->send_alone || !w->lead.empty(); }, &me));
      if (me.answered) return me.result;
    }
  }
  if (me.send_alone) return SendOne(me.request);
  absl::Status result = me.lead.empty() ? SendOne(me.request) : SendGroup(std::move(me.lead));
  HandOff();
  return result;
}

void CoordinatorLink::HandOff() {
  absl::MutexLock lock(&mu_);
  if (waiting_.empty()) {
    --in_flight_;
    return;
  }
  std::vector<Waiter*> group;
  const size_t take = std::min(waiting_.size(), static_cast<size_t>(kMaxEnlistBatch));
  group.assign(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(take));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(take));
  // The first waiter sends for the group and keeps this slot.
  Waiter* leader = group.front();
  leader->lead = std::move(group);
}

absl::Status CoordinatorLink::SendOne(const v1::EnlistRequest& request) {
  v1::EnlistResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, rpc_timeout_);
  const grpc::Status status = stub_->Enlist(&context, request, &response);
  if (status.ok()) vote_key_.Note(request.txid(), response.vote_key());
  return FromGrpcStatus(status);
}

absl::Status CoordinatorLink::SendGroup(std::vector<Waiter*> group) {
  if (group.size() == 1) return SendOne(group.front()->request);
  v1::EnlistBatchRequest request;
  for (Waiter* w : group) *request.add_enlistments() = std::move(w->request);
  v1::EnlistBatchResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, rpc_timeout_);
  const grpc::Status status = stub_->EnlistBatch(&context, request, &response);
  // A coordinator from before EnlistBatch: everyone sends alone.
  const bool unimplemented = status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
  const std::vector<absl::Status> results = AnswersOf(status, response, group.size());
  NoteVoteKeys(request, response, results);
  {
    absl::MutexLock lock(&mu_);
    ++batches_sent_;
    batched_enlistments_ += static_cast<int64_t>(group.size());
    if (unimplemented) singles_until_ = clock_->Now() + absl::Minutes(1);
    // Once answered, a waiter returns and its Waiter is gone: last use.
    for (size_t i = 1; i < group.size(); ++i) {
      if (unimplemented) {
        // Each sends its own request, moved into the batch above.
        group[i]->request = std::move(*request.mutable_enlistments(static_cast<int>(i)));
        group[i]->send_alone = true;
      } else {
        group[i]->result = results[i];
        group[i]->answered = true;
      }
    }
  }
  if (unimplemented) return SendOne(request.enlistments(0));
  return results[0];
}

int64_t CoordinatorLink::batches_sent() {
  absl::MutexLock lock(&mu_);
  return batches_sent_;
}

size_t CoordinatorLink::waiting() {
  absl::MutexLock lock(&mu_);
  return waiting_.size();
}

int64_t CoordinatorLink::batched_enlistments() {
  absl::MutexLock lock(&mu_);
  return batched_enlistments_;
}

void CoordinatorLink::NoteVoteKeys(const v1::EnlistBatchRequest& request,
                                   const v1::EnlistBatchResponse& response,
                                   const std::vector<absl::Status>& results) {
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) continue;  // then the answer exists (AnswersOf)
    vote_key_.Note(request.enlistments(static_cast<int>(i)).txid(),
                   response.answers(static_cast<int>(i)).vote_key());
  }
}

std::optional<Enlister::VoteSigning> CoordinatorLink::VoteSigningFor(const std::string& txid) {
  std::string endpoint;
  {
    absl::MutexLock lock(&mu_);
    endpoint = endpoint_;
  }
  return vote_key_.For(txid, endpoint);
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
    case v1::OUTCOME_COMMITTED:
      return RemoteOutcome::kCommitted;
    case v1::OUTCOME_ABORTED:
      return RemoteOutcome::kAborted;
    case v1::OUTCOME_PENDING:
      return RemoteOutcome::kPending;
    default:
      return absl::InternalError("coordinator sent no outcome");
  }
}

}  // namespace txcoord::participant
