// The relay thread (see outbox_relay.h): the lock, the connection, rounds
// of publishing, and the cleanup of delivered messages.
#include "agent/outbox_relay.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/jetstream_publisher.h"
#include "common/logging.h"

namespace txcoord::participant {
namespace {

// How long the loop waits at most before it looks again by itself (a
// commit wakes it sooner), and the longest wait between reconnects.
constexpr absl::Duration kIdlePoll = absl::Seconds(1);
constexpr absl::Duration kMaxConnectBackoff = absl::Seconds(5);
// Delivered rows are deleted in chunks, so that no one statement holds the
// participant's connection for long.
constexpr size_t kCleanupChunk = 1000;
// Delivered marks are written at least this often, and at once when this
// many wait.
constexpr absl::Duration kFlushInterval = absl::Milliseconds(200);
constexpr size_t kMaxUnrecorded = 1024;

}  // namespace

class OutboxRelay::Loop final {
 public:
  Loop(Participant* participant, OutboxRelayOptions options, MetricsRegistry* registry)
      : participant_(participant),
        options_(std::move(options)),
        policy_(options_.policy),
        retention_(options_.retention) {
    if (registry == nullptr) registry = &own_registry_;
    delivered_ = registry->AddCounter("txagent_outbox_delivered_total",
                                      "Outbox messages the broker acknowledged.");
    dead_lettered_ = registry->AddCounter(
        "txagent_outbox_dead_lettered_total",
        "Outbox messages given up after --outbox_max_attempts (kept as dead).");
    publish_errors_ = registry->AddCounter("txagent_outbox_publish_errors_total",
                                           "Publish attempts that were not acknowledged.");
    publish_latency_ = registry->AddHistogram(
        "txagent_outbox_publish_latency_seconds",
        "From publishing an outbox message to the stream's acknowledgement.",
        {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
    registry->AddRenderHook([this] {
      absl::StatusOr<OutboxCounts> counts = participant_->CountOutbox(/*count_delivered=*/false);
      if (counts.ok()) snapshot_ = *counts;
    });
    registry->AddGauge("txagent_outbox_pending", "Committed outbox messages not yet delivered.",
                       [this] { return static_cast<double>(snapshot_.pending); });
    registry->AddGauge("txagent_outbox_dead", "Dead-lettered outbox messages (txctl outbox).",
                       [this] { return static_cast<double>(snapshot_.dead); });
    registry->AddGauge("txagent_outbox_oldest_pending_age_seconds",
                       "Age of the oldest undelivered outbox message; 0 if none.", [this] {
                         if (!snapshot_.oldest_pending.has_value()) return 0.0;
                         return std::max(0.0, absl::ToDoubleSeconds(options_.clock->Now() -
                                                                    *snapshot_.oldest_pending));
                       });
    registry->AddGauge("txagent_outbox_relay_active",
                       "1 while this agent relays (holds the lock, broker connected).", [this] {
                         absl::MutexLock lock(&mu_);
                         return active_ ? 1.0 : 0.0;
                       });
  }

  ~Loop() { Stop(); }

  void StartThread() {
    thread_ = std::thread([this] { Run(); });
  }

  void Wake() {
    absl::MutexLock lock(&mu_);
    woken_ = true;
    wake_.Signal();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      wake_.Signal();
    }
    if (thread_.joinable()) thread_.join();
    if (lock_fd_ >= 0) {
      close(lock_fd_);  // releases the flock
      lock_fd_ = -1;
    }
  }

  RelayState state() const {
    absl::MutexLock lock(&mu_);
    return state_;
  }

  RelayPolicy policy() const {
    absl::MutexLock lock(&mu_);
    return policy_;
  }
  absl::Duration retention() const {
    absl::MutexLock lock(&mu_);
    return retention_;
  }
  void SetPolicy(const RelayPolicy& policy) {
    absl::MutexLock lock(&mu_);
    policy_ = policy;
  }
  void SetRetention(absl::Duration retention) {
    absl::MutexLock lock(&mu_);
    retention_ = retention;
    cleanup_due_ = true;
    woken_ = true;
    wake_.Signal();
  }

 private:
  void Run() {
    absl::Duration connect_backoff = absl::Milliseconds(100);
    absl::Time next_cleanup = options_.clock->Now();
    while (!Stopping()) {
      if (options_.nats_url.empty()) {
        SetState("no broker configured (--nats_url): messages wait in the outbox",
                 /*active=*/false);
        Sleep(absl::InfiniteDuration());
        continue;
      }
      if (lock_fd_ < 0 && !TakeLock()) {
        Sleep(absl::Seconds(2));
        continue;
      }
      if (publisher_ == nullptr && !ConnectOrWait(connect_backoff)) continue;
      connect_backoff = absl::Milliseconds(100);
      if (options_.clock->Now() >= next_cleanup || TakeCleanupDue()) {
        CleanUp();
        next_cleanup = options_.clock->Now() +
                       std::clamp(retention() / 10, absl::Seconds(1), absl::Minutes(1));
      }
      const std::optional<absl::Duration> idle = Round();
      if (idle.has_value()) Sleep(*idle);
    }
    FlushDelivered();
    absl::MutexLock lock(&mu_);
    active_ = false;
  }

  // One publishing round. Returns how long to wait before the next one
  // (nullopt: go on at once, more may be due).
  std::optional<absl::Duration> Round() {
    absl::StatusOr<std::vector<OutboxRow>> loaded =
        participant_->PendingOutbox(options_.batch + acked_.size());
    if (!loaded.ok()) {
      Fail(absl::StrCat("reading the outbox: ", loaded.status().ToString()));
      return absl::Seconds(1);
    }
    // Rows the stream acknowledged whose mark is not written yet are not
    // pending any more: their keys' next messages may go.
    std::vector<OutboxRow> pending;
    pending.reserve(loaded->size());
    for (OutboxRow& row : *loaded) {
      if (!acked_.contains(row.seq)) pending.push_back(std::move(row));
    }
    const absl::Time now = options_.clock->Now();
    const RelayPolicy policy = this->policy();
    const std::vector<size_t> due = PickDue(pending, now, options_.batch);
    if (due.empty()) {
      if (!FlushDelivered()) return absl::Seconds(1);
      const std::optional<absl::Time> next = NextDue(pending, now);
      return next.has_value() ? std::min(*next - now, kIdlePoll) : kIdlePoll;
    }
    std::vector<const OutboxRow*> rows;
    rows.reserve(due.size());
    for (size_t i : due) rows.push_back(&pending[i]);
    const std::vector<PublishResult> results =
        publisher_->PublishAll(rows, options_.publish_timeout);
    std::vector<OutboxAttempt> attempts;
    std::string unavailable;
    for (size_t i = 0; i < rows.size(); ++i) {
      const PublishResult& result = results[i];
      if (result.kind == PublishResult::Kind::kAcked) {
        acked_.insert(rows[i]->seq);
        unrecorded_.push_back({rows[i]->seq, /*delivered=*/true});
        delivered_->Increment();
        publish_latency_->Observe(result.latency);
        continue;
      }
      publish_errors_->Increment();
      if (result.kind == PublishResult::Kind::kUnavailable) {
        // The broker, not the message: no attempt is used up, so an outage
        // of any length dead-letters nothing. Connected, it is this
        // subject (no stream captures it yet): noted on the message.
        if (!publisher_->connected()) {
          unavailable = result.error;
          continue;
        }
        OutboxAttempt noted;
        noted.seq = rows[i]->seq;
        noted.error = result.error;
        noted.next_attempt = now + kIdlePoll;
        noted.counts = false;
        attempts.push_back(std::move(noted));
        continue;
      }
      attempts.push_back(FailedAttempt(*rows[i], result.error, now, policy));
      TXLOG(WARNING) << "outbox message " << rows[i]->id << " to " << rows[i]->message.topic << " "
                     << result.error << (attempts.back().dead ? ": dead-lettered" : ": will retry");
    }
    if (absl::Status recorded = participant_->RecordOutboxAttempts(attempts); !recorded.ok()) {
      Fail(absl::StrCat("recording failed attempts: ", recorded.ToString()));
      return absl::Seconds(1);
    }
    for (const OutboxAttempt& a : attempts) {
      if (a.dead) dead_lettered_->Increment();
    }
    if ((unrecorded_.size() >= kMaxUnrecorded || options_.clock->Now() >= next_flush_) &&
        !FlushDelivered()) {
      return absl::Seconds(1);
    }
    if (!unavailable.empty()) {
      Unreachable(unavailable);
      return std::min(policy.initial_backoff * 10, kMaxConnectBackoff);
    }
    SetState(absl::StrCat("relaying to ", options_.nats_url), /*active=*/true);
    return std::nullopt;
  }

  // Writes the delivered marks gathered since the last flush, in one
  // transaction: under load a round's own write would cost the agent's
  // connection as much as the commits it relays. A crash before the flush
  // only republishes them (dropped as duplicates; see messaging.md).
  bool FlushDelivered() {
    next_flush_ = options_.clock->Now() + kFlushInterval;
    if (unrecorded_.empty()) return true;
    if (absl::Status recorded = participant_->RecordOutboxAttempts(unrecorded_); !recorded.ok()) {
      Fail(absl::StrCat("recording deliveries: ", recorded.ToString()));
      return false;
    }
    unrecorded_.clear();
    acked_.clear();
    return true;
  }

  bool TakeLock() {
    const int fd = open(options_.lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      Fail(absl::StrCat("cannot open relay lock ", options_.lock_path, ": ", strerror(errno)));
      return false;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      SetState(absl::StrCat("standby: another agent relays this database (", options_.lock_path,
                            " is locked)"),
               /*active=*/false);
      return false;
    }
    lock_fd_ = fd;
    TXLOG(INFO) << "outbox relay holds " << options_.lock_path;
    return true;
  }

  bool ConnectOrWait(absl::Duration& backoff) {
    absl::StatusOr<std::unique_ptr<JetStreamPublisher>> publisher =
        JetStreamPublisher::Connect(options_.nats_url, "txagent outbox relay", absl::Seconds(2));
    absl::Status status = publisher.status();
    if (status.ok() && !options_.stream.empty()) {
      status =
          (*publisher)
              ->EnsureStream(options_.stream, options_.stream_subjects, options_.duplicate_window);
    }
    if (!status.ok()) {
      Unreachable(status.message());
      Sleep(backoff);
      backoff = std::min(backoff * 2, kMaxConnectBackoff);
      return false;
    }
    publisher_ = *std::move(publisher);
    TXLOG(INFO) << "outbox relay connected to " << options_.nats_url
                << (options_.stream.empty() ? "" : absl::StrCat(", stream ", options_.stream));
    SetState(absl::StrCat("relaying to ", options_.nats_url), /*active=*/true);
    return true;
  }

  void CleanUp() {
    const absl::Time cutoff = options_.clock->Now() - retention();
    int64_t total = 0;
    while (!Stopping()) {
      absl::StatusOr<int64_t> deleted = participant_->DeleteDeliveredOutbox(cutoff, kCleanupChunk);
      if (!deleted.ok()) {
        Fail(absl::StrCat("deleting delivered messages: ", deleted.status().ToString()));
        return;
      }
      total += *deleted;
      if (*deleted < static_cast<int64_t>(kCleanupChunk)) break;
    }
    if (total > 0) {
      TXLOG(INFO) << "outbox: deleted " << total << " delivered messages";
    }
  }

  // A retention change asked for a cleanup now.
  bool TakeCleanupDue() {
    absl::MutexLock lock(&mu_);
    return std::exchange(cleanup_due_, false);
  }

  bool Stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Waits `d`, or until woken or stopping.
  void Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    // A wait on a condition variable: real time, whatever the clock.
    const absl::Time until = absl::Now() + d;
    while (!stopping_ && !woken_) {
      if (wake_.WaitWithDeadline(&mu_, until)) break;
    }
    woken_ = false;
  }

  // What the relay does now, for operators and the active gauge.
  void SetState(std::string description, bool active) {
    absl::MutexLock lock(&mu_);
    if (state_.description != description) {
      TXLOG(INFO) << "outbox relay: " << description;
    }
    state_.description = std::move(description);
    active_ = active;
  }

  // A failure: logged once per distinct error, kept as the last error.
  void Fail(std::string error) {
    absl::MutexLock lock(&mu_);
    if (error != state_.last_error) {
      TXLOG(WARNING) << "outbox relay: " << error;
    }
    state_.last_error = std::move(error);
  }

  // The broker cannot be reached: both the state and the last error.
  void Unreachable(absl::string_view why) {
    const std::string error = absl::StrCat("broker unreachable: ", why);
    Fail(error);
    absl::MutexLock lock(&mu_);
    state_.description = error;
    active_ = false;
  }

  Participant* const participant_;
  const OutboxRelayOptions options_;
  MetricsRegistry own_registry_;  // when the caller gives none
  Counter* delivered_;
  Counter* dead_lettered_;
  Counter* publish_errors_;
  Histogram* publish_latency_;
  OutboxCounts snapshot_;  // the scrape's; used under the registry's lock

  // The relay thread's own.
  std::unique_ptr<JetStreamPublisher> publisher_;
  // Acknowledged by the stream, not yet marked delivered (FlushDelivered).
  std::vector<OutboxAttempt> unrecorded_;
  absl::flat_hash_set<int64_t> acked_;
  absl::Time next_flush_;
  int lock_fd_ = -1;
  std::thread thread_;

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  RelayState state_ ABSL_GUARDED_BY(mu_);
  RelayPolicy policy_ ABSL_GUARDED_BY(mu_);
  absl::Duration retention_ ABSL_GUARDED_BY(mu_);
  bool cleanup_due_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<OutboxRelay>> OutboxRelay::Start(Participant* participant,
                                                                OutboxRelayOptions options,
                                                                MetricsRegistry* registry) {
  if (!options.nats_url.empty() && options.lock_path.empty()) {
    return absl::InvalidArgumentError("the outbox relay needs a lock file path");
  }
  if (!options.stream.empty() && options.stream_subjects.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream ", options.stream, " needs subjects to capture (--outbox_subjects)"));
  }
  auto loop = std::make_unique<Loop>(participant, std::move(options), registry);
  loop->StartThread();
  return std::unique_ptr<OutboxRelay>(new OutboxRelay(std::move(loop)));
}

OutboxRelay::OutboxRelay(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}
OutboxRelay::~OutboxRelay() { Stop(); }
void OutboxRelay::Wake() { loop_->Wake(); }
void OutboxRelay::Stop() { loop_->Stop(); }
RelayState OutboxRelay::state() const { return loop_->state(); }
RelayPolicy OutboxRelay::policy() const { return loop_->policy(); }
absl::Duration OutboxRelay::retention() const { return loop_->retention(); }
void OutboxRelay::SetPolicy(const RelayPolicy& policy) { loop_->SetPolicy(policy); }
void OutboxRelay::SetRetention(absl::Duration retention) { loop_->SetRetention(retention); }

}  // namespace txcoord::participant
