#include "coordinator/grpc_participant_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

absl::StatusOr<Vote> VoteOf(v1::Vote vote, const std::string& reason) {
  switch (vote) {
    case v1::VOTE_YES: return Vote::kYes;
    case v1::VOTE_READ_ONLY: return Vote::kReadOnly;
    case v1::VOTE_NO:
      return absl::AbortedError(reason.empty() ? "voted NO" : "voted NO: " + reason);
    default: return absl::InternalError("participant sent no vote");
  }
}

}  // namespace

namespace {

GrpcParticipantClientOptions Checked(GrpcParticipantClientOptions options) {
  // Zero slots would queue every call forever; an empty or oversized batch
  // would be refused by every participant.
  options.max_in_flight = std::max(options.max_in_flight, 1);
  options.max_batch = std::clamp(options.max_batch, 1, 1000);
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
    // An OK Prepare has a vote: AnswerVote.
    request.voted(status.ok() ? absl::InternalError("participant sent no vote") : status);
  } else if (request.done) {
    request.done(status);
  }
}

void GrpcParticipantClient::AnswerVote(Request& request, const absl::StatusOr<Vote>& vote) {
  request.voted(vote);
}

void GrpcParticipantClient::Prepare(const BranchRef& branch, const std::string& txid,
                                    absl::Duration timeout,
                                    std::function<void(absl::StatusOr<Vote>)> done) {
  Request request;
  request.kind = v1::BatchRequest::KIND_PREPARE;
  request.txid = txid;
  request.branch_token = branch.token;
  request.deadline = absl::Now() + timeout;
  request.voted = std::move(done);
  Submit(branch.endpoint, std::move(request));
}

void GrpcParticipantClient::Commit(const BranchRef& branch, const std::string& txid,
                                   absl::Duration timeout, std::function<void(absl::Status)> done) {
  Request request;
  request.kind = v1::BatchRequest::KIND_COMMIT;
  request.txid = txid;
  request.deadline = absl::Now() + timeout;
  request.done = std::move(done);
  Submit(branch.endpoint, std::move(request));
}

void GrpcParticipantClient::Abort(const BranchRef& branch, const std::string& txid,
                                  absl::Duration timeout, std::function<void(absl::Status)> done) {
  Request request;
  request.kind = v1::BatchRequest::KIND_ABORT;
  request.txid = txid;
  request.deadline = absl::Now() + timeout;
  request.done = std::move(done);
  Submit(branch.endpoint, std::move(request));
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
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (peer->queue.empty()) {
        --peer->in_flight;
        break;
      }
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
      // This call's slot passes to the group; singles to an old
      // participant take one slot each.
      if (singles && !group.empty()) peer->in_flight += static_cast<int>(group.size()) - 1;
    }
    for (Request& request : expired) {
      Answer(request, absl::DeadlineExceededError(
                          "Deadline Exceeded (waited for calls to the participant in flight)"));
    }
    expired.clear();
    if (!group.empty()) break;
  }
  if (group.empty()) return;
  if (singles) {
    for (Request& request : group) SendSingle(peer, std::move(request));
  } else if (group.size() == 1) {
    SendSingle(peer, std::move(group.front()));
  } else {
    SendBatch(peer, std::move(group));
  }
}

void GrpcParticipantClient::SendSingle(Peer* peer, Request request) {
  auto shared = std::make_shared<Request>(std::move(request));
  const auto deadline = absl::ToChronoTime(shared->deadline);
  switch (shared->kind) {
    case v1::BatchRequest::KIND_PREPARE: {
      auto* call = new Call<v1::PrepareRequest, v1::PrepareResponse>;
      call->request.set_txid(shared->txid);
      call->request.set_branch_token(shared->branch_token);
      call->context.set_deadline(deadline);
      peer->stub->async()->Prepare(
          &call->context, &call->request, &call->response,
          [this, peer, call, shared](grpc::Status status) {
            std::unique_ptr<Call<v1::PrepareRequest, v1::PrepareResponse>> owned(call);
            CallEnded(peer);
            if (!status.ok()) return Answer(*shared, FromGrpcStatus(status));
            AnswerVote(*shared, VoteOf(call->response.vote(), call->response.reason()));
          });
      return;
    }
    case v1::BatchRequest::KIND_COMMIT:
    case v1::BatchRequest::KIND_ABORT: {
      auto* call = new Call<v1::BranchRequest, v1::BranchResponse>;
      call->request.set_txid(shared->txid);
      call->context.set_deadline(deadline);
      auto on_done = [this, peer, call, shared](grpc::Status status) {
        std::unique_ptr<Call<v1::BranchRequest, v1::BranchResponse>> owned(call);
        CallEnded(peer);
        Answer(*shared, FromGrpcStatus(status));
      };
      if (shared->kind == v1::BatchRequest::KIND_COMMIT) {
        peer->stub->async()->Commit(&call->context, &call->request, &call->response,
                                    std::move(on_done));
      } else {
        peer->stub->async()->Abort(&call->context, &call->request, &call->response,
                                   std::move(on_done));
      }
      return;
    }
    default:
      CallEnded(peer);
      Answer(*shared, absl::InternalError("unknown participant call"));
      return;
  }
}

void GrpcParticipantClient::SendBatch(Peer* peer, std::vector<Request> requests) {
  auto group = std::make_shared<std::vector<Request>>(std::move(requests));
  auto* call = new Call<v1::BatchRequest, v1::BatchResponse>;
  // The batch has its most patient entry's deadline: an impatient one (an
  // Abort has less time than a Commit) must not fail the others. An entry
  // answered after its own deadline is still answered right; the engine
  // keeps its own timers (the prepare timeout) for what it waits on.
  absl::Time deadline = absl::InfinitePast();
  for (const Request& request : *group) {
    deadline = std::max(deadline, request.deadline);
    v1::BatchRequest::Entry* entry = call->request.add_entries();
    entry->set_kind(request.kind);
    entry->set_txid(request.txid);
    entry->set_branch_token(request.branch_token);
  }
  call->context.set_deadline(absl::ToChronoTime(deadline));
  {
    absl::MutexLock lock(&mu_);
    ++batches_sent_;
    batched_entries_ += static_cast<int64_t>(group->size());
  }
  peer->stub->async()->Batch(
      &call->context, &call->request, &call->response,
      [this, peer, call, group](grpc::Status status) {
        std::unique_ptr<Call<v1::BatchRequest, v1::BatchResponse>> owned(call);
        if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          // An agent from before Batch: the entries go again, one by one.
          {
            absl::MutexLock lock(&mu_);
            peer->singles_until = absl::Now() + options_.singles_after_unimplemented;
            peer->in_flight += static_cast<int>(group->size()) - 1;
          }
          for (Request& request : *group) SendSingle(peer, std::move(request));
          return;
        }
        CallEnded(peer);
        const v1::BatchResponse& response = call->response;
        if (status.ok() && response.answers_size() != static_cast<int>(group->size())) {
          status = grpc::Status(grpc::StatusCode::INTERNAL,
                                absl::StrCat("participant answered ", response.answers_size(),
                                             " of ", group->size(), " batch entries"));
        }
        for (size_t i = 0; i < group->size(); ++i) {
          Request& request = (*group)[i];
          if (!status.ok()) {
            Answer(request, FromGrpcStatus(status));
            continue;
          }
          const v1::BatchResponse::Answer& answer = response.answers(static_cast<int>(i));
          if (answer.code() != 0) {
            Answer(request, absl::Status(static_cast<absl::StatusCode>(answer.code()),
                                         answer.message()));
          } else if (request.kind == v1::BatchRequest::KIND_PREPARE) {
            AnswerVote(request, VoteOf(answer.vote(), answer.reason()));
          } else {
            Answer(request, absl::OkStatus());
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
  auto* call = new Call<v1::BranchRequest, v1::CommitOnePhaseResponse>;
  call->request.set_txid(txid);
  call->request.set_branch_token(branch.token);
  SetDeadline(&call->context, timeout);
  stub->async()->CommitOnePhase(
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

int64_t GrpcParticipantClient::batches_sent() {
  absl::MutexLock lock(&mu_);
  return batches_sent_;
}

int64_t GrpcParticipantClient::batched_entries() {
  absl::MutexLock lock(&mu_);
  return batched_entries_;
}

}  // namespace txcoord::coordinator
