#include "coordinator/grpc_participant_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_util.h"

namespace txcoord::coordinator {
namespace {

// One call in flight: what the callback API needs until it completes, and
// what its completion answers (`pending`).
template <typename Request, typename Response, typename Pending>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
  Pending pending;
};

absl::StatusOr<Vote> VoteOf(v1::Vote vote, const std::string& reason) {
  switch (vote) {
    case v1::VOTE_YES: return Vote::kYes;
    case v1::VOTE_READ_ONLY: return Vote::kReadOnly;
    case v1::VOTE_NO:
      return absl::AbortedError(reason.empty() ? "voted NO" : "voted NO: " + reason);
    default: return absl::InternalError("participant sent no vote");
  }
}

GrpcParticipantClientOptions Checked(GrpcParticipantClientOptions options) {
  // Zero slots would queue every call forever; an empty or oversized batch
  // would be refused by every participant.
  options.max_in_flight = std::max(options.max_in_flight, 1);
  options.max_batch = std::clamp(options.max_batch, 1, kMaxBatchEntries);
  return options;
}

}  // namespace

GrpcParticipantClient::GrpcParticipantClient(GrpcParticipantClientOptions options)
    : options_(Checked(std::move(options))) {}

GrpcParticipantClient::Peer* GrpcParticipantClient::PeerFor(const std::string& endpoint) {
  std::unique_ptr<Peer>& peer = peers_[endpoint];
  if (!peer) {
    peer = std::make_unique<Peer>();
    peer->stub = v1::Participant::NewStub(MakeChannel(endpoint, options_.credentials));
  }
  return peer.get();
}

void GrpcParticipantClient::Answer(Request& request, const absl::Status& status) {
  if (request.kind == v1::BatchRequest::KIND_PREPARE) {
    // An OK Prepare has a vote: its caller answers `voted` itself.
    request.voted(status.ok() ? absl::InternalError("participant sent no vote") : status);
  } else if (request.done) {
    request.done(status);
  }
}

void GrpcParticipantClient::Prepare(const BranchRef& branch, const std::string& txid,
                                    absl::Duration timeout,
                                    std::function<void(absl::StatusOr<Vote>)> done) {
  Request request{v1::BatchRequest::KIND_PREPARE, txid, branch.token, absl::Now() + timeout};
  request.voted = std::move(done);
  Submit(branch.endpoint, std::move(request));
}

void GrpcParticipantClient::Commit(const BranchRef& branch, const std::string& txid,
                                   absl::Duration timeout, std::function<void(absl::Status)> done) {
  Submit(branch.endpoint, Request{v1::BatchRequest::KIND_COMMIT, txid, 0, absl::Now() + timeout,
                                  nullptr, std::move(done)});
}

void GrpcParticipantClient::Abort(const BranchRef& branch, const std::string& txid,
                                  absl::Duration timeout, std::function<void(absl::Status)> done) {
  Submit(branch.endpoint, Request{v1::BatchRequest::KIND_ABORT, txid, 0, absl::Now() + timeout,
                                  nullptr, std::move(done)});
}

void GrpcParticipantClient::Submit(const std::string& endpoint, Request request) {
  Peer* peer;
  {
    absl::MutexLock lock(&mu_);
    peer = PeerFor(endpoint);
    if (peer->in_flight >= options_.max_in_flight) {
      peer->queue.push_back(std::move(request));
      return;
    }
    ++peer->in_flight;
  }
  SendSingle(peer, std::move(request));
}

void GrpcParticipantClient::CallEnded(Peer* peer) {
  std::vector<Request> group;
  std::vector<Request> expired;
  bool singles;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    singles = now < peer->singles_until;
    const size_t limit = singles ? peer->queue.size() : static_cast<size_t>(options_.max_batch);
    // What waited past its deadline is answered as a call that timed out
    // would be, unsent: one stale entry must not fail a batch of fresh ones.
    while (!peer->queue.empty() && group.size() < limit) {
      Request& next = peer->queue.front();
      (next.deadline <= now ? expired : group).push_back(std::move(next));
      peer->queue.pop_front();
    }
    // This call's slot passes to the group (singles to an old participant
    // take one slot each), or is freed: then the queue is empty.
    if (group.empty()) {
      --peer->in_flight;
    } else if (singles) {
      peer->in_flight += static_cast<int>(group.size()) - 1;
    }
  }
  for (Request& request : expired) {
    Answer(request, absl::DeadlineExceededError(
                        "Deadline Exceeded (waited for calls to the participant in flight)"));
  }
  if (group.size() == 1 || singles) {
    for (Request& request : group) SendSingle(peer, std::move(request));
  } else if (!group.empty()) {
    SendBatch(peer, std::move(group));
  }
}

void GrpcParticipantClient::SendSingle(Peer* peer, Request request) {
  const auto deadline = absl::ToChronoTime(request.deadline);
  if (request.kind == v1::BatchRequest::KIND_PREPARE) {
    auto* call = new Call<v1::PrepareRequest, v1::PrepareResponse, Request>;
    call->request.set_txid(request.txid);
    call->request.set_branch_token(request.branch_token);
    call->context.set_deadline(deadline);
    call->pending = std::move(request);
    peer->stub->async()->Prepare(
        &call->context, &call->request, &call->response,
        [this, peer, call](grpc::Status status) {
          std::unique_ptr<Call<v1::PrepareRequest, v1::PrepareResponse, Request>> owned(call);
          CallEnded(peer);
          if (!status.ok()) return Answer(call->pending, FromGrpcStatus(status));
          call->pending.voted(VoteOf(call->response.vote(), call->response.reason()));
        });
    return;
  }
  auto* call = new Call<v1::BranchRequest, v1::BranchResponse, Request>;
  call->request.set_txid(request.txid);
  call->context.set_deadline(deadline);
  const bool commit = request.kind == v1::BatchRequest::KIND_COMMIT;
  call->pending = std::move(request);
  auto on_done = [this, peer, call](grpc::Status status) {
    std::unique_ptr<Call<v1::BranchRequest, v1::BranchResponse, Request>> owned(call);
    CallEnded(peer);
    Answer(call->pending, FromGrpcStatus(status));
  };
  if (commit) {
    peer->stub->async()->Commit(&call->context, &call->request, &call->response,
                                std::move(on_done));
  } else {
    peer->stub->async()->Abort(&call->context, &call->request, &call->response,
                               std::move(on_done));
  }
}

void GrpcParticipantClient::SendBatch(Peer* peer, std::vector<Request> requests) {
  auto* call = new Call<v1::BatchRequest, v1::BatchResponse, std::vector<Request>>;
  // The batch has its most patient entry's deadline: an impatient one (an
  // Abort has less time than a Commit) must not fail the others. An entry
  // answered after its own deadline is still answered right; the engine
  // keeps its own timers (the prepare timeout) for what it waits on.
  absl::Time deadline = absl::InfinitePast();
  for (const Request& request : requests) {
    deadline = std::max(deadline, request.deadline);
    v1::BatchRequest::Entry* entry = call->request.add_entries();
    entry->set_kind(request.kind);
    entry->set_txid(request.txid);
    entry->set_branch_token(request.branch_token);
  }
  call->context.set_deadline(absl::ToChronoTime(deadline));
  call->pending = std::move(requests);
  {
    absl::MutexLock lock(&mu_);
    ++batches_sent_;
    batched_entries_ += static_cast<int64_t>(call->pending.size());
  }
  peer->stub->async()->Batch(
      &call->context, &call->request, &call->response, [this, peer, call](grpc::Status status) {
        std::unique_ptr<Call<v1::BatchRequest, v1::BatchResponse, std::vector<Request>>> owned(
            call);
        std::vector<Request>& group = call->pending;
        if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          // An agent from before Batch: the entries go again, one by one.
          {
            absl::MutexLock lock(&mu_);
            peer->singles_until = absl::Now() + options_.singles_after_unimplemented;
            peer->in_flight += static_cast<int>(group.size()) - 1;
          }
          for (Request& request : group) SendSingle(peer, std::move(request));
          return;
        }
        CallEnded(peer);
        const v1::BatchResponse& response = call->response;
        if (status.ok() && response.answers_size() != static_cast<int>(group.size())) {
          status = grpc::Status(grpc::StatusCode::INTERNAL,
                                absl::StrCat("participant answered ", response.answers_size(),
                                             " of ", group.size(), " batch entries"));
        }
        for (size_t i = 0; i < group.size(); ++i) {
          Request& request = group[i];
          if (!status.ok()) {
            Answer(request, FromGrpcStatus(status));
            continue;
          }
          const v1::BatchResponse::Answer& answer = response.answers(static_cast<int>(i));
          const absl::Status entry_status = StatusOfAnswer(answer);
          if (entry_status.ok() && request.kind == v1::BatchRequest::KIND_PREPARE) {
            request.voted(VoteOf(answer.vote(), answer.reason()));
          } else {
            Answer(request, entry_status);
          }
        }
      });
}

void GrpcParticipantClient::CommitOnePhase(const BranchRef& branch, const std::string& txid,
                                           absl::Duration timeout,
                                           std::function<void(absl::StatusOr<bool>)> done) {
  v1::Participant::Stub* stub;
  {
    absl::MutexLock lock(&mu_);
    stub = PeerFor(branch.endpoint)->stub.get();
  }
  using OnePhase =
      Call<v1::BranchRequest, v1::CommitOnePhaseResponse, std::function<void(absl::StatusOr<bool>)>>;
  auto* call = new OnePhase;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch.token);
  SetDeadline(&call->context, timeout);
  call->pending = std::move(done);
  stub->async()->CommitOnePhase(
      &call->context, &call->request, &call->response, [call](grpc::Status status) {
        std::unique_ptr<OnePhase> owned(call);
        if (!status.ok()) return call->pending(FromGrpcStatus(status));
        switch (call->response.outcome()) {
          case v1::OUTCOME_COMMITTED: return call->pending(true);
          case v1::OUTCOME_ABORTED: return call->pending(false);
          default: return call->pending(absl::InternalError("participant sent no one-phase outcome"));
        }
      });
}

int64_t GrpcParticipantClient::batches_sent() {
  absl::MutexLock lock(&mu_);
  return batches_sent_;
}

int64_t GrpcParticipantClient::batched_entries() {
  absl::MutexLock lock(&mu_);
  return batched_entries_;
}

}  // namespace txcoord::coordinator
