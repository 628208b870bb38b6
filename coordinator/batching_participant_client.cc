#include "coordinator/batching_participant_client.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"

namespace txcoord::coordinator {
namespace {

BatchingOptions Checked(BatchingOptions options, int max_batch_entries) {
  // Zero slots would queue every call forever; an empty or oversized batch
  // would be refused by every participant.
  options.max_in_flight = std::max(options.max_in_flight, 1);
  options.max_batch = std::clamp(options.max_batch, 1, std::max(max_batch_entries, 1));
  return options;
}

}  // namespace

BatchingParticipantClient::BatchingParticipantClient(ParticipantTransport* transport, Clock* clock,
                                                     BatchingOptions options)
    : transport_(transport),
      clock_(clock),
      options_(Checked(std::move(options), transport->max_batch_entries())) {}

BatchingParticipantClient::Peer* BatchingParticipantClient::PeerFor(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Peer>& peer = peers_[endpoint];
  if (!peer) peer = std::make_unique<Peer>(endpoint);
  return peer.get();
}

void BatchingParticipantClient::Finish(Request& request, const absl::Status& status, Vote vote) {
  if (request.entry.op != BranchOp::kPrepare) {
    if (request.done) request.done(status);
    return;
  }
  if (!status.ok()) {
    request.voted(status);
  } else if (vote == Vote::kUnknown) {
    request.voted(absl::InternalError("participant sent no vote"));
  } else {
    request.voted(vote);
  }
}

void BatchingParticipantClient::Prepare(const BranchRef& branch, const std::string& txid,
                                        absl::Duration timeout,
                                        std::function<void(absl::StatusOr<Vote>)> done) {
  Request request{{BranchOp::kPrepare, txid, branch.token}, clock_->Now() + timeout};
  request.voted = std::move(done);
  Submit(branch.endpoint, std::move(request));
}

void BatchingParticipantClient::Commit(const BranchRef& branch, const std::string& txid,
                                       absl::Duration timeout,
                                       std::function<void(absl::Status)> done) {
  Submit(branch.endpoint,
         Request{{BranchOp::kCommit, txid, 0}, clock_->Now() + timeout, nullptr, std::move(done)});
}

void BatchingParticipantClient::Abort(const BranchRef& branch, const std::string& txid,
                                      absl::Duration timeout,
                                      std::function<void(absl::Status)> done) {
  Submit(branch.endpoint,
         Request{{BranchOp::kAbort, txid, 0}, clock_->Now() + timeout, nullptr, std::move(done)});
}

void BatchingParticipantClient::CommitOnePhase(const BranchRef& branch, const std::string& txid,
                                               absl::Duration timeout,
                                               std::function<void(absl::StatusOr<bool>)> done) {
  transport_->CommitOnePhase(branch.endpoint, txid, branch.token, timeout, std::move(done));
}

void BatchingParticipantClient::Submit(const std::string& endpoint, Request request) {
  Peer* peer = PeerFor(endpoint);
  {
    absl::MutexLock lock(&peer->mu);
    if (peer->in_flight >= options_.max_in_flight) {
      peer->queue.push_back(std::move(request));
      return;
    }
    ++peer->in_flight;
  }
  SendSingle(peer, std::move(request));
}

void BatchingParticipantClient::CallEnded(Peer* peer, bool singles_now) {
  std::vector<Request> group;
  std::vector<Request> expired;
  bool singles;
  {
    absl::MutexLock lock(&peer->mu);
    const absl::Time now = clock_->Now();
    singles = singles_now || now < peer->singles_until;
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
      assert(peer->queue.empty());
    } else if (singles) {
      peer->in_flight += static_cast<int>(group.size()) - 1;
    }
    assert(peer->in_flight >= 0);
  }
  for (Request& request : expired) {
    Finish(request, absl::DeadlineExceededError(
                        "Deadline Exceeded (waited for calls to the participant in flight)"));
  }
  if (group.size() == 1 || singles) {
    for (Request& request : group) SendSingle(peer, std::move(request));
  } else if (!group.empty()) {
    SendBatch(peer, std::move(group));
  }
}

void BatchingParticipantClient::SendSingle(Peer* peer, Request request) {
  const absl::Duration timeout = request.deadline - clock_->Now();
  // The callback owns the request; the transport calls it exactly once.
  auto pending = std::make_shared<Request>(std::move(request));
  const BatchEntry& entry = pending->entry;
  switch (entry.op) {
    case BranchOp::kPrepare:
      transport_->Prepare(peer->endpoint, entry.txid, entry.branch_token, timeout,
                          [this, peer, pending](absl::StatusOr<Vote> vote) {
                            CallEnded(peer);
                            if (!vote.ok()) return Finish(*pending, vote.status());
                            Finish(*pending, absl::OkStatus(), *vote);
                          });
      return;
    case BranchOp::kCommit:
      transport_->Commit(peer->endpoint, entry.txid, timeout,
                         [this, peer, pending](absl::Status status) {
                           CallEnded(peer);
                           Finish(*pending, status);
                         });
      return;
    case BranchOp::kAbort:
      transport_->Abort(peer->endpoint, entry.txid, timeout,
                        [this, peer, pending](absl::Status status) {
                          CallEnded(peer);
                          Finish(*pending, status);
                        });
      return;
  }
}

void BatchingParticipantClient::SendBatch(Peer* peer, std::vector<Request> requests) {
  // The batch has its most patient entry's deadline: an impatient one (an
  // Abort has less time than a Commit) must not fail the others. An entry
  // answered after its own deadline is still answered right; the engine
  // keeps its own timers (the prepare timeout) for what it waits on.
  absl::Time deadline = absl::InfinitePast();
  std::vector<BatchEntry> entries;
  entries.reserve(requests.size());
  for (const Request& request : requests) {
    deadline = std::max(deadline, request.deadline);
    entries.push_back(request.entry);
  }
  {
    absl::MutexLock lock(&mu_);
    ++batches_sent_;
    batched_entries_ += static_cast<int64_t>(requests.size());
  }
  auto pending = std::make_shared<std::vector<Request>>(std::move(requests));
  transport_->Batch(peer->endpoint, std::move(entries), deadline - clock_->Now(),
                    [this, peer, pending](absl::StatusOr<std::vector<BatchAnswer>> answers) {
                      BatchEnded(peer, std::move(*pending), std::move(answers));
                    });
}

void BatchingParticipantClient::BatchEnded(Peer* peer, std::vector<Request> requests,
                                           absl::StatusOr<std::vector<BatchAnswer>> answers) {
  if (absl::IsUnimplemented(answers.status())) {
    // An agent from before Batch: nothing ran. The entries go back to the
    // head of the queue, older than anything queued since, and the batch's
    // slot ends as a call would, sending singles even when the window is
    // zero (else a batch would be tried again at once, and again).
    {
      absl::MutexLock lock(&peer->mu);
      peer->singles_until = clock_->Now() + options_.singles_after_unimplemented;
      for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
        peer->queue.push_front(std::move(*it));
      }
    }
    CallEnded(peer, /*singles_now=*/true);
    return;
  }
  CallEnded(peer);
  absl::Status status = answers.status();
  if (status.ok() && answers->size() != requests.size()) {
    status = absl::InternalError(absl::StrCat("participant answered ", answers->size(), " of ",
                                              requests.size(), " batch entries"));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!status.ok()) {
      Finish(requests[i], status);
    } else {
      Finish(requests[i], (*answers)[i].status, (*answers)[i].vote);
    }
  }
}

int64_t BatchingParticipantClient::batches_sent() {
  absl::MutexLock lock(&mu_);
  return batches_sent_;
}

int64_t BatchingParticipantClient::batched_entries() {
  absl::MutexLock lock(&mu_);
  return batched_entries_;
}

}  // namespace txcoord::coordinator
