#include "coordinator/framed_participant_transport.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "coordinator/participant_protos.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::coordinator {
namespace {

FramedTransportOptions WithinRange(FramedTransportOptions options) {
  if (options.threads_per_endpoint < 1) options.threads_per_endpoint = 1;
  return options;
}

}  // namespace

FramedParticipantTransport::FramedParticipantTransport(ParticipantTransport* fallback,
                                                       FramedTransportOptions options)
    : fallback_(fallback), options_(WithinRange(options)) {}

FramedParticipantTransport::~FramedParticipantTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [address, peer] : peers_) peer->work.SignalAll();
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_map<std::thread::id, std::thread>* running) {
          return running->empty();
        },
        &running_));
  }
  JoinExited();
}

void FramedParticipantTransport::NoteFramedEndpoint(const std::string& endpoint,
                                                    const std::string& framed) {
  absl::MutexLock lock(&mu_);
  if (framed.empty()) {
    framed_.erase(endpoint);
    return;
  }
  // The same port named again keeps its hold-down; another one starts afresh.
  Framed& known = framed_[endpoint];
  if (known.address != framed) known = Framed{framed};
}

std::string FramedParticipantTransport::FramedEndpointOf(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  auto it = framed_.find(endpoint);
  if (it == framed_.end() || absl::Now() < it->second.held_until) return "";
  return it->second.address;
}

int FramedParticipantTransport::threads() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

int FramedParticipantTransport::max_batch_entries() const { return fallback_->max_batch_entries(); }

void FramedParticipantTransport::HoldDown(const std::string& endpoint, const std::string& framed,
                                          const absl::Status& why) {
  absl::Duration hold;
  {
    absl::MutexLock lock(&mu_);
    auto it = framed_.find(endpoint);
    const absl::Time now = absl::Now();
    // Replaced meanwhile, or already held by a call that failed alongside.
    if (it == framed_.end() || it->second.address != framed || now < it->second.held_until) return;
    hold = it->second.next_hold;
    it->second.held_until = now + hold;
    it->second.next_hold = std::min(hold * 2, kLongestHold);
  }
  TXLOG(WARNING) << "framed port " << framed << " of the participant at " << endpoint << " failed ("
                 << why << "); its calls go to " << endpoint << " for "
                 << absl::FormatDuration(hold) << ", or until it enlists with another port";
}

void FramedParticipantTransport::Answered(const std::string& endpoint, const std::string& framed) {
  absl::MutexLock lock(&mu_);
  auto it = framed_.find(endpoint);
  if (it != framed_.end() && it->second.address == framed) it->second.next_hold = kFirstHold;
}

bool FramedParticipantTransport::Enqueue(const std::string& endpoint, Job job) {
  // Threads that ended are joined outside the lock, taken in the same
  // critical section as the call's queueing: no second lock per call.
  std::vector<std::thread> exited;
  const bool queued = EnqueueLocked(endpoint, std::move(job), &exited);
  for (std::thread& thread : exited) thread.join();
  return queued;
}

bool FramedParticipantTransport::EnqueueLocked(const std::string& endpoint, Job job,
                                               std::vector<std::thread>* exited) {
  absl::MutexLock lock(&mu_);
  exited->swap(exited_);
  if (stopping_) return false;
  auto framed = framed_.find(endpoint);
  if (framed == framed_.end() || absl::Now() < framed->second.held_until) return false;
  const std::string& address = framed->second.address;
  std::unique_ptr<Peer>& peer = peers_[address];
  if (peer == nullptr) peer = std::make_unique<Peer>(address, options_.connect_timeout);
  peer->queue.push_back(std::move(job));
  if (peer->idle > 0) peer->work.Signal();
  // Each idle thread takes one queued call; a call beyond them needs a new
  // thread while the endpoint may have more.
  if (peer->queue.size() > static_cast<size_t>(peer->idle) &&
      peer->threads < options_.threads_per_endpoint) {
    ++peer->threads;
    try {
      // The new thread takes mu_ before anything else: it finds itself in
      // running_ when it ends.
      std::thread thread(&FramedParticipantTransport::Work, this, peer.get());
      const std::thread::id id = thread.get_id();
      running_.emplace(id, std::move(thread));
    } catch (const std::system_error& e) {
      --peer->threads;
      TXLOG(WARNING) << "no thread for the framed port " << address << ": " << e.what();
      if (peer->threads == 0) {  // nobody would run it: the caller sends it elsewhere
        peer->queue.pop_back();
        if (peer->queue.empty()) peers_.erase(address);
        return false;
      }
    }
  }
  return true;
}

void FramedParticipantTransport::Work(Peer* peer) {
  mu_.Lock();
  for (;;) {
    if (peer->queue.empty() && !stopping_) {
      ++peer->idle;
      const absl::Time until = absl::Now() + options_.idle_exit;
      while (peer->queue.empty() && !stopping_) {
        if (peer->work.WaitWithDeadline(&mu_, until)) break;  // idle too long
      }
      --peer->idle;
    }
    if (peer->queue.empty()) break;  // idle too long, or stopping with nothing queued
    Job job = std::move(peer->queue.front());
    peer->queue.pop_front();
    mu_.Unlock();
    job(peer->channel);
    job = nullptr;  // what it holds goes before the lock is taken again
    mu_.Lock();
  }
  // The peer goes with its last thread, and its idle connections close:
  // ports no agent uses any more (agents moved, restarted elsewhere) do
  // not pile up. The next call opens a new connection.
  if (--peer->threads == 0) peers_.erase(peer->channel.address());
  auto self = running_.find(std::this_thread::get_id());
  exited_.push_back(std::move(self->second));
  running_.erase(self);
  mu_.Unlock();
}

void FramedParticipantTransport::JoinExited() {
  std::vector<std::thread> exited;
  {
    absl::MutexLock lock(&mu_);
    exited.swap(exited_);
  }
  for (std::thread& thread : exited) thread.join();
}

template <typename Response>
void FramedParticipantTransport::Send(const std::string& endpoint, FrameMethod method,
                                      std::shared_ptr<const google::protobuf::MessageLite> request,
                                      absl::Duration timeout,
                                      std::function<void(absl::StatusOr<Response>)> answer,
                                      std::function<void(absl::Duration)> fallback) {
  const absl::Time deadline = absl::Now() + timeout;
  Job job = [this, endpoint, method, request, deadline, answer, fallback](FramedChannel& channel) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return answer(absl::DeadlineExceededError(
          absl::StrCat("deadline passed before the call was sent to ", channel.address())));
    }
    Response response;
    FramedChannel::Progress progress;
    const absl::Status status =
        channel.Call(method, *request, left, /*wait_for_ready=*/false, &response, &progress);
    // Never seen by the agent, or not served on this port: elsewhere.
    if (progress == FramedChannel::Progress::kNotSent ||
        (progress == FramedChannel::Progress::kAnswered && absl::IsUnimplemented(status))) {
      HoldDown(endpoint, channel.address(), status);
      fallbacks_.fetch_add(1, std::memory_order_relaxed);
      return fallback(deadline - absl::Now());
    }
    if (progress == FramedChannel::Progress::kAnswered) {
      framed_calls_.fetch_add(1, std::memory_order_relaxed);
      Answered(endpoint, channel.address());
    }
    if (!status.ok()) return answer(status);
    answer(std::move(response));
  };
  if (!Enqueue(endpoint, std::move(job))) fallback(timeout);
}

void FramedParticipantTransport::Prepare(const std::string& endpoint, const std::string& txid,
                                         uint64_t branch_token, absl::Duration timeout,
                                         std::function<void(absl::StatusOr<Vote>)> done) {
  auto request = std::make_shared<v1::PrepareRequest>();
  request->set_txid(txid);
  request->set_branch_token(branch_token);
  Send<v1::PrepareResponse>(
      endpoint, FrameMethod::kParticipantPrepare, std::move(request), timeout,
      [done](absl::StatusOr<v1::PrepareResponse> response) {
        if (!response.ok()) return done(response.status());
        done(VoteOfProto(*response));
      },
      [this, endpoint, txid, branch_token, done](absl::Duration left) {
        fallback_->Prepare(endpoint, txid, branch_token, left, done);
      });
}

void FramedParticipantTransport::Commit(const std::string& endpoint, const std::string& txid,
                                        absl::Duration timeout,
                                        std::function<void(absl::Status)> done) {
  Phase2(/*commit=*/true, endpoint, txid, timeout, std::move(done));
}

void FramedParticipantTransport::Abort(const std::string& endpoint, const std::string& txid,
                                       absl::Duration timeout,
                                       std::function<void(absl::Status)> done) {
  Phase2(/*commit=*/false, endpoint, txid, timeout, std::move(done));
}

void FramedParticipantTransport::Phase2(bool commit, const std::string& endpoint,
                                        const std::string& txid, absl::Duration timeout,
                                        std::function<void(absl::Status)> done) {
  auto request = std::make_shared<v1::BranchRequest>();
  request->set_txid(txid);
  Send<v1::BranchResponse>(
      endpoint, commit ? FrameMethod::kParticipantCommit : FrameMethod::kParticipantAbort,
      std::move(request), timeout,
      [done](absl::StatusOr<v1::BranchResponse> response) { done(response.status()); },
      [this, commit, endpoint, txid, done](absl::Duration left) {
        if (commit) {
          fallback_->Commit(endpoint, txid, left, done);
        } else {
          fallback_->Abort(endpoint, txid, left, done);
        }
      });
}

void FramedParticipantTransport::CommitOnePhase(const std::string& endpoint,
                                                const std::string& txid, uint64_t branch_token,
                                                absl::Duration timeout,
                                                std::function<void(absl::StatusOr<bool>)> done) {
  auto request = std::make_shared<v1::BranchRequest>();
  request->set_txid(txid);
  request->set_branch_token(branch_token);
  Send<v1::CommitOnePhaseResponse>(
      endpoint, FrameMethod::kParticipantCommitOnePhase, std::move(request), timeout,
      [done](absl::StatusOr<v1::CommitOnePhaseResponse> response) {
        if (!response.ok()) return done(response.status());
        done(OnePhaseOutcomeOf(*response));
      },
      [this, endpoint, txid, branch_token, done](absl::Duration left) {
        fallback_->CommitOnePhase(endpoint, txid, branch_token, left, done);
      });
}

void FramedParticipantTransport::Batch(
    const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
    std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) {
  auto ops = std::make_shared<std::vector<BranchOp>>();
  auto request = std::make_shared<v1::BatchRequest>(BatchRequestOf(entries, ops.get()));
  Send<v1::BatchResponse>(
      endpoint, FrameMethod::kParticipantBatch, std::move(request), timeout,
      [ops, done](absl::StatusOr<v1::BatchResponse> response) {
        if (!response.ok()) return done(response.status());
        done(BatchAnswersOf(*ops, *response));
      },
      [this, endpoint, entries = std::move(entries), done](absl::Duration left) {
        fallback_->Batch(endpoint, entries, left, done);
      });
}

}  // namespace txcoord::coordinator
