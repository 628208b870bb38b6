#include "agent/coordinator_link.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "rpc/frame.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {

CoordinatorLink::CoordinatorLink(std::shared_ptr<grpc::Channel> channel,
                                 std::string participant_name, absl::Duration rpc_timeout,
                                 Clock* clock, bool framed_allowed)
    : stub_(v1::Coordinator::NewStub(std::move(channel))),
      name_(std::move(participant_name)),
      rpc_timeout_(rpc_timeout),
      clock_(clock),
      framed_allowed_(framed_allowed) {}

namespace {

// What each of an EnlistBatch's `n` entries ended with: its answer, or the
// call's error for all (also when the count of answers is wrong).
std::vector<absl::Status> AnswersOf(absl::Status status, const v1::EnlistBatchResponse& response,
                                    size_t n) {
  if (status.ok() && response.answers_size() != static_cast<int>(n)) {
    status = absl::InternalError(
        absl::StrCat("coordinator answered ", response.answers_size(), " of ", n, " enlistments"));
  }
  std::vector<absl::Status> results(n, status);
  if (!status.ok()) return results;
  for (size_t i = 0; i < n; ++i) results[i] = StatusOfAnswer(response.answers(static_cast<int>(i)));
  return results;
}

}  // namespace

CoordinatorLink::~CoordinatorLink() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &async_in_flight_));
    stopping_ = true;
    threads.swap(framed_threads_);
  }
  for (std::thread& thread : threads) thread.join();
}

std::shared_ptr<FramedChannel> CoordinatorLink::Framed() {
  absl::MutexLock lock(&mu_);
  if (clock_->Now() < framed_held_until_) return nullptr;
  return framed_;
}

std::string CoordinatorLink::framed_endpoint() {
  std::shared_ptr<FramedChannel> framed = Framed();
  return framed == nullptr ? "" : framed->address();
}

void CoordinatorLink::NoteFramed(const std::string& framed_endpoint) {
  if (!framed_allowed_) return;
  absl::MutexLock lock(&mu_);
  if (framed_endpoint.empty()) {
    framed_.reset();
  } else if (framed_ == nullptr || framed_->address() != framed_endpoint) {
    // Another port: no hold-down of the last one applies to it.
    framed_ = std::make_shared<FramedChannel>(framed_endpoint, /*max_idle=*/kMaxEnlistsInFlight + 2,
                                              /*connect_timeout=*/absl::Seconds(1));
    framed_held_until_ = absl::InfinitePast();
    framed_next_hold_ = absl::Seconds(30);
  }
}

bool CoordinatorLink::FramedFailed(const FramedChannel& channel, const absl::Status& status,
                                   FramedChannel::Progress progress) {
  const bool elsewhere =
      progress == FramedChannel::Progress::kNotSent ||
      (progress == FramedChannel::Progress::kAnswered && absl::IsUnimplemented(status));
  if (!elsewhere) {
    if (progress == FramedChannel::Progress::kAnswered) {
      framed_calls_.fetch_add(1, std::memory_order_relaxed);
      absl::MutexLock lock(&mu_);
      if (framed_.get() == &channel) framed_next_hold_ = absl::Seconds(30);
    }
    return false;
  }
  framed_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  absl::Duration hold;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    // Replaced meanwhile, or held already by a call that failed alongside.
    if (framed_.get() != &channel || now < framed_held_until_) return true;
    hold = framed_next_hold_;
    framed_held_until_ = now + hold;
    framed_next_hold_ = std::min(hold * 2, absl::Minutes(5));
  }
  TXLOG(WARNING) << "the coordinator's framed port " << channel.address() << " failed (" << status
                 << "); enlisting over gRPC for " << absl::FormatDuration(hold)
                 << ", or until an answer names another port";
  return true;
}

void CoordinatorLink::RunFramed(std::function<void()> job) {
  {
    absl::MutexLock lock(&mu_);
    framed_jobs_.push_back(std::move(job));
    if (framed_jobs_.size() <= static_cast<size_t>(framed_idle_) ||
        framed_threads_.size() >= static_cast<size_t>(kMaxEnlistsInFlight)) {
      return;
    }
    try {
      framed_threads_.emplace_back(&CoordinatorLink::FramedWorker, this);
      return;
    } catch (const std::system_error& e) {
      TXLOG(WARNING) << "no thread for framed Enlists: " << e.what();
      if (!framed_threads_.empty()) return;  // those run it
      job = std::move(framed_jobs_.back());
      framed_jobs_.pop_back();
    }
  }
  job();  // nobody else would: on the caller's thread
}

void CoordinatorLink::FramedWorker() {
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      ++framed_idle_;
      mu_.Await(absl::Condition(
          +[](CoordinatorLink* link) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return link->stopping_ || !link->framed_jobs_.empty();
          },
          this));
      --framed_idle_;
      if (framed_jobs_.empty()) return;  // stopping
      job = std::move(framed_jobs_.front());
      framed_jobs_.pop_front();
    }
    job();
  }
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

// Lives until the call's end, which takes it over.
struct CoordinatorLink::AsyncCall {
  absl::Time deadline;
  grpc::ClientContext context;
  v1::EnlistRequest one;
  v1::EnlistResponse one_response;
  v1::EnlistBatchRequest many;
  v1::EnlistBatchResponse many_response;
  std::vector<Queued> batch;
};

void CoordinatorLink::SendAsync(std::vector<Queued> batch) {
  auto* call = new AsyncCall;
  call->deadline = absl::Now() + rpc_timeout_;
  call->batch = std::move(batch);
  if (call->batch.size() == 1) {
    call->one = std::move(call->batch.front().request);
  } else {
    for (Queued& q : call->batch) *call->many.add_enlistments() = std::move(q.request);
  }
  std::shared_ptr<FramedChannel> framed = Framed();
  if (framed == nullptr) return SendAsyncGrpc(call);
  RunFramed([this, call, framed] {
    const absl::Duration left = call->deadline - absl::Now();
    FramedChannel::Progress progress;
    const absl::Status status =
        call->batch.size() == 1
            ? framed->Call(FrameMethod::kCoordinatorEnlist, call->one, left,
                           /*wait_for_ready=*/false, &call->one_response, &progress)
            : framed->Call(FrameMethod::kCoordinatorEnlistBatch, call->many, left,
                           /*wait_for_ready=*/false, &call->many_response, &progress);
    if (FramedFailed(*framed, status, progress)) return SendAsyncGrpc(call);
    FinishAsync(call, status);
  });
}

void CoordinatorLink::SendAsyncGrpc(AsyncCall* call) {
  call->one_response.Clear();
  call->many_response.Clear();
  call->context.set_deadline(absl::ToChronoTime(call->deadline));
  auto finish = [this, call](const grpc::Status& status) {
    FinishAsync(call, FromGrpcStatus(status));
  };
  if (call->batch.size() == 1) {
    stub_->async()->Enlist(&call->context, &call->one, &call->one_response, std::move(finish));
  } else {
    stub_->async()->EnlistBatch(&call->context, &call->many, &call->many_response,
                                std::move(finish));
  }
}

void CoordinatorLink::FinishAsync(AsyncCall* call, absl::Status status) {
  std::unique_ptr<AsyncCall> owned(call);
  const size_t n = owned->batch.size();
  const std::vector<absl::Status> results =
      n == 1 ? std::vector<absl::Status>{status} : AnswersOf(status, owned->many_response, n);
  if (n == 1) {
    if (status.ok()) {
      vote_key_.Note(owned->one.txid(), owned->one_response.vote_key());
      NoteFramed(owned->one_response.framed_endpoint());
    }
  } else {
    NoteVoteKeys(owned->many, owned->many_response, results);
    if (status.ok()) NoteFramed(owned->many_response.framed_endpoint());
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

template <typename Request, typename Response, typename GrpcCall>
absl::Status CoordinatorLink::CallBlocking(FrameMethod method, const Request& request,
                                           Response* response, GrpcCall grpc_call) {
  const absl::Time deadline = absl::Now() + rpc_timeout_;
  std::shared_ptr<FramedChannel> framed = Framed();
  if (framed != nullptr) {
    FramedChannel::Progress progress;
    const absl::Status status = framed->Call(method, request, rpc_timeout_,
                                             /*wait_for_ready=*/false, response, &progress);
    if (!FramedFailed(*framed, status, progress)) return status;
    response->Clear();
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  return FromGrpcStatus(grpc_call(&context, request, response));
}

absl::Status CoordinatorLink::SendOne(const v1::EnlistRequest& request) {
  v1::EnlistResponse response;
  const absl::Status status =
      CallBlocking(FrameMethod::kCoordinatorEnlist, request, &response,
                   [this](grpc::ClientContext* context, const v1::EnlistRequest& r,
                          v1::EnlistResponse* out) { return stub_->Enlist(context, r, out); });
  if (status.ok()) {
    vote_key_.Note(request.txid(), response.vote_key());
    NoteFramed(response.framed_endpoint());
  }
  return status;
}

absl::Status CoordinatorLink::SendGroup(std::vector<Waiter*> group) {
  if (group.size() == 1) return SendOne(group.front()->request);
  v1::EnlistBatchRequest request;
  for (Waiter* w : group) *request.add_enlistments() = std::move(w->request);
  v1::EnlistBatchResponse response;
  const absl::Status status = CallBlocking(
      FrameMethod::kCoordinatorEnlistBatch, request, &response,
      [this](grpc::ClientContext* context, const v1::EnlistBatchRequest& r,
             v1::EnlistBatchResponse* out) { return stub_->EnlistBatch(context, r, out); });
  // A coordinator from before EnlistBatch: everyone sends alone.
  const bool unimplemented = absl::IsUnimplemented(status);
  const std::vector<absl::Status> results = AnswersOf(status, response, group.size());
  NoteVoteKeys(request, response, results);
  if (status.ok()) NoteFramed(response.framed_endpoint());
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
