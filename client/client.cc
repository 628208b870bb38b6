#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/channel_cache.h"
#include "client/transaction.h"
#include "cluster/coordinator_directory.h"
#include "common/txid.h"
#include "rpc/framed_channel.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord {

// Keeps the generated stubs (and so grpcpp) out of the public header: one
// fixed channel, or one stub per coordinator endpoint of a directory.
class Client::Stub final {
 public:
  struct Target {
    std::string node_id;  // empty: the fixed channel or a static directory
    v1::Coordinator::Stub* stub = nullptr;
  };

  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : fixed_(v1::Coordinator::NewStub(std::move(channel))) {}
  Stub(std::shared_ptr<cluster::CoordinatorDirectory> directory,
       std::shared_ptr<grpc::ChannelCredentials> credentials)
      : directory_(std::move(directory)), credentials_(std::move(credentials)) {}

  bool routed() const { return directory_ != nullptr; }

  absl::StatusOr<Target> ForBegin(const std::vector<std::string>& exclude) {
    if (!routed()) return Target{"", fixed_.get()};
    absl::StatusOr<cluster::CoordinatorChoice> choice = directory_->PickForBegin(exclude);
    if (!choice.ok()) return choice.status();
    return Target{choice->node_id, StubFor(choice->endpoint)};
  }

  absl::StatusOr<v1::Coordinator::Stub*> ForTxid(const std::string& txid) {
    if (!routed()) return fixed_.get();
    absl::StatusOr<cluster::CoordinatorChoice> owner = directory_->Owner(txid);
    if (!owner.ok()) return owner.status();
    return StubFor(owner->endpoint);
  }

 private:
  v1::Coordinator::Stub* StubFor(const std::string& endpoint) {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<v1::Coordinator::Stub>& stub = stubs_[endpoint];
    if (stub == nullptr) {
      stub = v1::Coordinator::NewStub(credentials_ ? MakeChannel(endpoint, credentials_)
                                                   : SharedChannel(endpoint));
    }
    return stub.get();
  }

  const std::unique_ptr<v1::Coordinator::Stub> fixed_;
  const std::shared_ptr<cluster::CoordinatorDirectory> directory_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  absl::Mutex mu_;
  // One per endpoint ever used: a handful of coordinators, and the
  // endpoints they restarted on.
  absl::flat_hash_map<std::string, std::unique_ptr<v1::Coordinator::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
};

namespace {

// A branch the Commit or Abort names, with its signed vote when it has one.
void ToProto(const NamedBranch& branch, v1::NamedBranch* out) {
  out->set_participant(branch.participant);
  out->set_branch_token(branch.branch_token);
  if (branch.vote_proof.empty()) return;
  out->set_endpoint(branch.endpoint);
  out->set_vote_proof(branch.vote_proof);
}

// BeginRequest.timeout_ms's documented maximum.
constexpr absl::Duration kMaxTxTimeout = absl::Hours(1);

// How Commit's kUnknown message starts (IsOutcomeUnknown).
constexpr char kOutcomeUnknownPrefix[] = "outcome of";

// Commit's pauses between calls whose answer was lost.
constexpr absl::Duration kFirstSettleBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxSettleBackoff = absl::Seconds(2);

// A Commit call that ended with this status may have been decided either
// way: the status is not the coordinator's answer (the channel's, a
// proxy's, or a deadline's), or the coordinator could not tell yet (its log
// failed: UNAVAILABLE). The coordinator answers everything else itself.
bool AnswerLost(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

void Prepare(grpc::ClientContext* context, absl::Duration timeout, bool wait_for_ready) {
  SetDeadline(context, timeout);
  context->set_wait_for_ready(wait_for_ready);
}

}  // namespace

// The block of reserved txids Begin hands out (ClientOptions::reserve_txids).
// Times are on the steady clock: a step of the wall clock must not stretch
// the hand-out window.
struct Client::Reserved {
  using Clock = std::chrono::steady_clock;

  absl::Mutex mu;
  std::string cluster ABSL_GUARDED_BY(mu);
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  uint64_t next ABSL_GUARDED_BY(mu) = 0;  // [next, end) not handed out yet
  uint64_t end ABSL_GUARDED_BY(mu) = 0;
  uint32_t timeout_ms ABSL_GUARDED_BY(mu) = 0;
  Clock::time_point hand_out_until ABSL_GUARDED_BY(mu);
  bool checks_named_branches ABSL_GUARDED_BY(mu) = false;
  bool refilling ABSL_GUARDED_BY(mu) = false;  // one thread reserves; the others Begin
  // After a failed reservation, Begin until then (a minute after
  // UNIMPLEMENTED: a coordinator that predates ReserveTxids).
  Clock::time_point retry_after ABSL_GUARDED_BY(mu);
  // The latest epoch an answer showed for `newest_cluster`: a reservation
  // of that cluster from an earlier epoch, arriving after it (sent before
  // the restart, or by a stale owner), is dead on arrival.
  std::string newest_cluster ABSL_GUARDED_BY(mu);
  uint64_t newest_epoch ABSL_GUARDED_BY(mu) = 0;

  bool Live(Clock::time_point now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return next < end && now < hand_out_until;
  }
  std::optional<BeginResult> Take(uint32_t timeout, Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!Live(now) || timeout != timeout_ms) return std::nullopt;
    return BeginResult{Txid{cluster, epoch, next++}.ToString(), checks_named_branches};
  }
  // Drops the block if `txid` is of its coordinator and epoch: that
  // coordinator restarted, was replaced, or drains, and knows none of it.
  void DropIfOf(const std::string& txid) ABSL_LOCKS_EXCLUDED(mu) {
    absl::StatusOr<Txid> parsed = ParseTxid(txid);
    if (!parsed.ok()) return;
    absl::MutexLock lock(&mu);
    if (parsed->cluster == cluster && parsed->epoch == epoch) next = end;
  }
  // Drops the block if the coordinator of `txid`'s cluster answered from a
  // later epoch than the block's: it restarted or was replaced since the
  // reservation. (An earlier epoch is a stale owner that has not yet seen
  // its replacement; the block is the replacement's and lives.)
  void DropIfOlderThan(const std::string& txid, uint64_t answered_epoch) ABSL_LOCKS_EXCLUDED(mu) {
    absl::StatusOr<Txid> parsed = ParseTxid(txid);
    if (!parsed.ok()) return;
    absl::MutexLock lock(&mu);
    if (parsed->cluster != newest_cluster || answered_epoch > newest_epoch) {
      newest_cluster = parsed->cluster;
      newest_epoch = answered_epoch;
    }
    if (parsed->cluster == cluster && answered_epoch > epoch) next = end;
  }
};

namespace {

// What the coordinator says of a txid it does not hold, in Commit's
// ABORTED reason (presumed abort) and in an Enlist refusal an agent passes
// on: for a txid of the reserved block, a sign that the block is dead. A
// restart or a takeover also shows in the answer's coordinator_epoch
// (NoteEpoch); this covers a coordinator that drains, which dropped its
// reservations in the same epoch.
bool SaysTxidUnknown(absl::string_view text) {
  return absl::StrContains(text, "the coordinator holds no commit for it") ||
         absl::StrContains(text, " is unknown (never begun");
}

}  // namespace

Client::Client(const std::string& target, ClientOptions options)
    : Client(options.credentials ? MakeChannel(target, options.credentials) : SharedChannel(target),
             options) {}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(options),
      stub_(std::make_unique<Stub>(std::move(channel))),
      reserved_(std::make_unique<Reserved>()),
      framed_(FramedChannelUnlessTls(options.framed_address, options.credentials != nullptr)) {}

Client::Client(std::shared_ptr<cluster::CoordinatorDirectory> directory, ClientOptions options)
    : options_(options),
      stub_(std::make_unique<Stub>(std::move(directory), options.credentials)),
      reserved_(std::make_unique<Reserved>()) {}

Client::~Client() = default;

absl::StatusOr<std::string> Client::Begin(absl::Duration timeout) {
  absl::StatusOr<BeginResult> begun = BeginWith(timeout);
  if (!begun.ok()) return begun.status();
  return std::move(begun->txid);
}

absl::StatusOr<BeginResult> Client::BeginWith(absl::Duration timeout) {
  if (timeout < absl::ZeroDuration() || timeout > kMaxTxTimeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("transaction timeout ", absl::FormatDuration(timeout), " is outside [0, ",
                     absl::FormatDuration(kMaxTxTimeout), "]"));
  }
  v1::BeginRequest request;
  // Rounded up: a positive timeout below 1ms must not turn into 0, which
  // would mean "the coordinator's default".
  request.set_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)))));
  if (options_.reserve_txids > 0) {
    absl::StatusOr<std::optional<BeginResult>> reserved = TakeReserved(request.timeout_ms());
    if (!reserved.ok()) return reserved.status();
    if (reserved->has_value()) return **reserved;
  }
  std::vector<std::string> tried;
  absl::Status status;
  for (int attempt = 1; attempt <= kBeginAttempts; ++attempt) {
    absl::StatusOr<Stub::Target> target = stub_->ForBegin(tried);
    if (!target.ok()) {
      if (tried.empty()) return target.status();
      break;  // every registered coordinator was tried
    }
    v1::BeginResponse response;
    grpc::ClientContext context;
    // With several coordinators an unreachable one is skipped at once;
    // a single coordinator is waited for, up to the deadline.
    Prepare(&context, options_.call_timeout, stub_->routed() ? false : options_.wait_for_ready);
    status = FromGrpcStatus(target->stub->Begin(&context, request, &response));
    if (status.ok()) {
      return BeginResult{std::move(*response.mutable_txid()), response.checks_named_branches()};
    }
    // Begin is safe to repeat elsewhere: a txid issued but never used
    // aborts at its deadline.
    if (!stub_->routed() || status.code() != absl::StatusCode::kUnavailable) return status;
    tried.push_back(target->node_id);
  }
  return absl::UnavailableError(absl::StrCat("Begin failed at coordinator(s) ",
                                             absl::StrJoin(tried, ", "),
                                             "; last error: ", status.ToString()));
}

absl::StatusOr<std::optional<BeginResult>> Client::TakeReserved(uint32_t timeout_ms) {
  using Clock = Reserved::Clock;
  Reserved& r = *reserved_;
  const auto now = [this] { return options_.steady_now ? options_.steady_now() : Clock::now(); };
  {
    absl::MutexLock lock(&r.mu);
    const Clock::time_point at = now();
    if (std::optional<BeginResult> txid = r.Take(timeout_ms, at)) return txid;
    // Another timeout than the live block's, another thread reserving, or
    // a recent failure: Begin this time.
    if (r.Live(at) || r.refilling || at < r.retry_after) return std::nullopt;
    r.refilling = true;
  }
  // Reserve a block where Begin would go. A failure falls back to Begin,
  // which has its own retries (with a directory, other coordinators);
  // but a single coordinator waited for in vain would only be waited for
  // again.
  v1::ReserveTxidsResponse response;
  grpc::Status status;
  const Clock::time_point sent = now();
  absl::StatusOr<Stub::Target> target = stub_->ForBegin({});
  if (target.ok()) {
    v1::ReserveTxidsRequest request;
    request.set_count(std::min<uint32_t>(options_.reserve_txids, ClientOptions::kMaxReservedTxids));
    request.set_timeout_ms(timeout_ms);
    grpc::ClientContext context;
    Prepare(&context, options_.call_timeout, stub_->routed() ? false : options_.wait_for_ready);
    status = target->stub->ReserveTxids(&context, request, &response);
  } else {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator to reserve at");
  }
  absl::MutexLock lock(&r.mu);
  r.refilling = false;
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    r.retry_after = now() + std::chrono::minutes(1);
    return std::nullopt;
  }
  if (!status.ok() || response.count() == 0) {
    r.retry_after = now() + std::chrono::seconds(1);
    if (!stub_->routed() && options_.wait_for_ready &&
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return FromGrpcStatus(status);
    }
    return std::nullopt;
  }
  if (response.cluster() == r.newest_cluster && response.epoch() < r.newest_epoch) {
    // Reserved before a restart the client has heard of since.
    r.retry_after = now() + std::chrono::seconds(1);
    return std::nullopt;
  }
  // Counted from before the call: the coordinator's reservation began
  // later. Half its life is left for the first use.
  r.cluster = response.cluster();
  r.epoch = response.epoch();
  r.next = response.first_sequence();
  r.end = response.first_sequence() + response.count();
  r.timeout_ms = timeout_ms;
  r.hand_out_until = sent + std::chrono::milliseconds(response.valid_for_ms() / 2);
  r.checks_named_branches = response.checks_named_branches();
  return r.Take(timeout_ms, now());
}

void Client::NoteRefused(const std::string& txid, const absl::Status& status,
                         bool from_coordinator) {
  if (options_.reserve_txids == 0) return;
  if ((from_coordinator && status.code() == absl::StatusCode::kUnavailable) ||
      SaysTxidUnknown(status.message())) {
    reserved_->DropIfOf(txid);
  }
}

void Client::NoteEpoch(const std::string& txid, uint64_t coordinator_epoch) {
  if (options_.reserve_txids == 0 || coordinator_epoch == 0) return;
  reserved_->DropIfOlderThan(txid, coordinator_epoch);
}

absl::StatusOr<Transaction> Client::BeginTransaction(absl::Duration timeout) {
  absl::StatusOr<BeginResult> begun = BeginWith(timeout);
  if (!begun.ok()) return begun.status();
  return Transaction(*this, std::move(begun->txid), begun->checks_named_branches);
}

bool IsOutcomeUnknown(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnknown &&
         absl::StartsWith(status.message(), kOutcomeUnknownPrefix);
}

absl::StatusOr<CommitResult> Client::Commit(const std::string& txid) { return Commit(txid, {}); }

absl::StatusOr<CommitResult> Client::Commit(const std::string& txid,
                                            const std::vector<NamedBranch>& branches) {
  const absl::Time start = absl::Now();
  const absl::Time give_up = start + options_.settle_timeout;
  absl::Duration backoff = kFirstSettleBackoff;
  absl::BitGen jitter;
  for (int attempt = 1;; ++attempt) {
    const absl::Duration left = give_up - absl::Now();
    bool lost = false;
    absl::StatusOr<CommitResult> result = CommitOnce(txid, branches,
                                                     options_.settle_timeout > absl::ZeroDuration()
                                                         ? std::min(options_.commit_timeout, left)
                                                         : options_.commit_timeout,
                                                     &lost);
    if (!result.ok()) {
      NoteRefused(txid, result.status(), true);
    } else if (!result->committed) {
      NoteRefused(txid, absl::AbortedError(result->reason), true);
    }
    if (!lost || options_.settle_timeout <= absl::ZeroDuration()) return result;
    // Half to all of the backoff: clients that lost the coordinator together
    // do not come back together.
    const absl::Duration pause = backoff * absl::Uniform(jitter, 0.5, 1.0);
    if (absl::Now() + pause >= give_up) {
      return absl::UnknownError(absl::StrCat(
          kOutcomeUnknownPrefix, " ", txid, " unknown after ", attempt, " Commit call(s) over ",
          absl::FormatDuration(absl::Now() - start), ": last error: ", result.status().ToString()));
    }
    absl::SleepFor(pause);
    backoff = std::min(backoff * 2, kMaxSettleBackoff);
  }
}

absl::StatusOr<CommitResult> Client::CommitOnce(const std::string& txid,
                                                const std::vector<NamedBranch>& branches,
                                                absl::Duration timeout, bool* lost) {
  // Resolved on every call: an owner that restarted elsewhere is found.
  absl::StatusOr<v1::Coordinator::Stub*> stub = stub_->ForTxid(txid);
  if (!stub.ok()) {
    // Not registered now (its lease expired): it may come back, and only
    // it knows the outcome.
    *lost = stub.status().code() == absl::StatusCode::kNotFound;
    return stub.status();
  }
  v1::CommitRequest request;
  request.set_txid(txid);
  for (const NamedBranch& branch : branches) ToProto(branch, request.add_branches());
  v1::CommitResponse response;
  absl::Status status;
  if (framed_ != nullptr) {
    status = framed_->Call(FrameMethod::kCoordinatorCommit, request, timeout,
                           options_.wait_for_ready, &response);
  } else {
    grpc::ClientContext context;
    Prepare(&context, timeout, options_.wait_for_ready);
    status = FromGrpcStatus((*stub)->Commit(&context, request, &response));
  }
  *lost = AnswerLost(status);
  if (!status.ok()) return status;
  NoteEpoch(txid, response.coordinator_epoch());
  switch (response.outcome()) {
    case v1::OUTCOME_COMMITTED:
      return CommitResult{true, ""};
    case v1::OUTCOME_ABORTED:
      return CommitResult{false, response.reason()};
    default:
      // The contract allows only the two final outcomes here; anything else
      // is a coordinator bug, and guessing either way could lie to the caller.
      return absl::InternalError(absl::StrCat("coordinator answered Commit of ", txid,
                                              " with outcome ",
                                              v1::Outcome_Name(response.outcome())));
  }
}

absl::Status Client::Abort(const std::string& txid) { return Abort(txid, {}); }

absl::Status Client::Abort(const std::string& txid, const std::vector<NamedBranch>& branches) {
  absl::StatusOr<v1::Coordinator::Stub*> stub = stub_->ForTxid(txid);
  if (!stub.ok()) return stub.status();
  v1::AbortRequest request;
  request.set_txid(txid);
  for (const NamedBranch& branch : branches) {
    if (branch.vote_proof.empty()) continue;  // its Enlist told the coordinator
    ToProto(branch, request.add_branches());
  }
  v1::AbortResponse response;
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout, options_.wait_for_ready);
  absl::Status status = FromGrpcStatus((*stub)->Abort(&context, request, &response));
  NoteRefused(txid, status, true);
  if (status.ok()) NoteEpoch(txid, response.coordinator_epoch());
  return status;
}

absl::StatusOr<v1::Transaction> Client::GetTransaction(const std::string& txid) {
  absl::StatusOr<v1::Coordinator::Stub*> stub = stub_->ForTxid(txid);
  if (!stub.ok()) return stub.status();
  v1::GetTransactionRequest request;
  request.set_txid(txid);
  v1::Transaction response;
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout, options_.wait_for_ready);
  absl::Status status = FromGrpcStatus((*stub)->GetTransaction(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

}  // namespace txcoord
