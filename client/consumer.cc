#include "client/consumer.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/consumer_store.h"
#include "client/jetstream_link.h"
#include "common/failpoint.h"
#include "common/logging.h"

namespace txcoord {

using consumer_internal::BatchResult;
using consumer_internal::ConsumerStore;
using consumer_internal::Delivery;
using consumer_internal::Disposition;
using consumer_internal::DurableConsumer;
using consumer_internal::JetStreamConnection;

class Consumer::Impl final {
 public:
  Impl(ConsumerOptions options, ApplyFunction apply, std::unique_ptr<ConsumerStore> store,
       std::unique_ptr<JetStreamConnection> connection)
      : options_(std::move(options)),
        apply_(std::move(apply)),
        store_(std::move(store)),
        connection_(std::move(connection)) {}

  // Opens the durable consumer after `position` and remembers where its
  // delivery count stands. Runs before Start, or on the consumer's thread.
  absl::Status Resync(uint64_t position) {
    disconnects_seen_ = connection_->disconnects();
    durable_.reset();
    absl::StatusOr<std::unique_ptr<DurableConsumer>> durable =
        DurableConsumer::Open(connection_.get(), options_, position);
    if (!durable.ok()) return durable.status();
    durable_ = std::move(*durable);
    last_consumer_seq_ = durable_->delivered_before();
    expected_stream_seq_ = 0;
    absl::MutexLock lock(&mu_);
    if (durable_->recreated()) ++stats_.resyncs;
    stats_.position = position;
    return absl::OkStatus();
  }

  void Start() {
    absl::MutexLock lifecycle(&lifecycle_mu_);
    if (thread_.joinable() || Stopping()) return;
    thread_ = std::thread([this] { Loop(); });
  }

  void Stop() {
    absl::MutexLock lifecycle(&lifecycle_mu_);
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  ConsumerStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  bool Stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Waits `delay`, or less if Stop is called meanwhile.
  void Pause(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
  }

  void RecordError(const absl::Status& status, bool apply_failure) {
    TXLOG(WARNING) << "consumer " << options_.stream << "/" << options_.durable << ": " << status;
    absl::MutexLock lock(&mu_);
    ++(apply_failure ? stats_.apply_failures : stats_.errors);
    stats_.last_error = status.ToString();
  }

  absl::Duration Backoff(int failures_in_a_row) const {
    absl::Duration delay = options_.retry_delay;
    for (int i = 1; i < failures_in_a_row && delay < options_.max_retry_delay; ++i) delay *= 2;
    return std::min(delay, options_.max_retry_delay);
  }

  void Loop() {
    int failures_in_a_row = 0;
    absl::Time next_prune = absl::Now();
    while (!Stopping()) {
      absl::Status status = Step(&next_prune);
      if (status.ok()) {
        failures_in_a_row = 0;
        continue;
      }
      RecordError(status, /*apply_failure=*/false);
      Pause(Backoff(++failures_in_a_row));
    }
    durable_.reset();
  }

  // One round: resync if needed, fetch, apply, acknowledge.
  absl::Status Step(absl::Time* next_prune) {
    if (durable_ == nullptr || connection_->disconnects() != disconnects_seen_) {
      absl::StatusOr<uint64_t> position = store_->Position(options_.durable);
      if (!position.ok()) return position.status();
      if (absl::Status status = Resync(*position); !status.ok()) return status;
    }
    if (absl::Now() >= *next_prune) {
      *next_prune = absl::Now() + options_.prune_interval;
      absl::StatusOr<int64_t> pruned = store_->PruneInbox(absl::Now() - options_.inbox_retention);
      if (!pruned.ok()) return pruned.status();
    }
    absl::StatusOr<std::vector<Delivery>> batch =
        durable_->Fetch(options_.batch_size, options_.fetch_wait);
    if (!batch.ok()) {
      // Whatever the server handed out meanwhile is unacked: start over.
      durable_.reset();
      return batch.status();
    }
    if (batch->empty()) return absl::OkStatus();
    return Handle(*batch);
  }

  absl::Status Handle(std::vector<Delivery>& batch) {
    // Only what follows without a gap may be applied: a missing delivery
    // (lost in a reconnect) or a handed-back message that did not come first
    // would let later messages overtake it. Start over after the position.
    size_t usable = 0;
    bool gap = false;
    for (; usable < batch.size(); ++usable) {
      const Delivery& delivery = batch[usable];
      bool in_sequence = delivery.consumer_seq == last_consumer_seq_ + 1;
      bool expected =
          expected_stream_seq_ == 0 || delivery.message.stream_seq <= expected_stream_seq_;
      if (!in_sequence || !expected) {
        gap = true;
        break;
      }
      last_consumer_seq_ = delivery.consumer_seq;
      if (delivery.message.stream_seq == expected_stream_seq_) expected_stream_seq_ = 0;
    }
    std::vector<const InboundMessage*> messages;
    int64_t redelivered = 0;
    for (size_t i = 0; i < usable; ++i) {
      messages.push_back(&batch[i].message);
      if (batch[i].message.deliveries > 1) ++redelivered;
    }
    absl::Status result = absl::OkStatus();
    if (!messages.empty()) {
      TXCOORD_FAILPOINT("consumer-before-apply");
      absl::StatusOr<BatchResult> applied =
          store_->ApplyBatch(options_.durable, options_.stream, messages, apply_,
                             options_.max_deliveries, absl::Now());
      if (!applied.ok()) {
        // Nothing committed: hand the whole batch back, in order.
        for (size_t i = 0; i < usable; ++i) (void)durable_->Nak(batch[i]);
        expected_stream_seq_ = batch[0].message.stream_seq;
        result = applied.status();
      } else {
        TXCOORD_FAILPOINT("consumer-after-commit");
        result = Acknowledge(batch, *applied, redelivered);
      }
    }
    if (gap) {
      TXLOG(WARNING) << "consumer " << options_.stream << "/" << options_.durable
                     << ": delivery out of order at stream sequence "
                     << batch[usable].message.stream_seq << "; resuming after the position";
      durable_.reset();
    }
    return result;
  }

  absl::Status Acknowledge(std::vector<Delivery>& batch, const BatchResult& applied,
                           int64_t redelivered) {
    absl::Status send = absl::OkStatus();
    bool handed_back = false;
    for (size_t i = 0; i < applied.dispositions.size(); ++i) {
      absl::Status status;
      switch (applied.dispositions[i]) {
        case Disposition::kAck:
          status = durable_->Ack(batch[i]);
          break;
        case Disposition::kTerm:
          status = durable_->Term(batch[i]);
          break;
        case Disposition::kNak:
          if (!handed_back) expected_stream_seq_ = batch[i].message.stream_seq;
          handed_back = true;
          status = durable_->Nak(batch[i]);
          break;
      }
      if (send.ok()) send.Update(status);
    }
    {
      absl::MutexLock lock(&mu_);
      stats_.applied += applied.applied;
      stats_.duplicates += applied.duplicates;
      stats_.already_applied += applied.already_applied;
      stats_.dead_lettered += applied.dead_lettered;
      stats_.redelivered += redelivered;
      stats_.position = std::max(stats_.position, applied.position);
    }
    if (!send.ok()) {
      // A lost ack only brings a known message back; a lost nak would let
      // later messages overtake it.
      durable_.reset();
      return send;
    }
    if (!applied.apply_error.ok()) {
      RecordError(applied.apply_error, /*apply_failure=*/true);
      Pause(Backoff(applied.failed_deliveries));
    }
    return absl::OkStatus();
  }

  const ConsumerOptions options_;
  const ApplyFunction apply_;
  // Used by Create's thread, then by the consumer's thread only.
  std::unique_ptr<ConsumerStore> store_;
  std::unique_ptr<JetStreamConnection> connection_;
  std::unique_ptr<DurableConsumer> durable_;
  uint64_t disconnects_seen_ = 0;
  uint64_t last_consumer_seq_ = 0;  // of the last delivery taken in order
  // A handed-back message that must be the next one applied; 0 if none.
  uint64_t expected_stream_seq_ = 0;

  // Serialises Start and Stop; never taken by the consumer's thread.
  absl::Mutex lifecycle_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread thread_ ABSL_GUARDED_BY(lifecycle_mu_);

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ConsumerStats stats_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(ConsumerOptions options,
                                                           ApplyFunction apply) {
  if (options.stream.empty()) return absl::InvalidArgumentError("consumer: no stream given");
  if (options.durable.empty() || absl::StrContains(options.durable, '.')) {
    return absl::InvalidArgumentError(
        absl::StrCat("consumer: durable name \"", options.durable, "\" must be non-empty, no '.'"));
  }
  if (options.db_path.empty()) return absl::InvalidArgumentError("consumer: no database given");
  if (!apply) return absl::InvalidArgumentError("consumer: no apply function given");
  if (options.batch_size <= 0 || options.max_ack_pending < options.batch_size ||
      options.max_deliveries <= 0) {
    return absl::InvalidArgumentError(
        "consumer: need batch_size > 0, max_ack_pending >= batch_size, max_deliveries > 0");
  }
  absl::StatusOr<std::unique_ptr<ConsumerStore>> store =
      ConsumerStore::Open(options.db_path, options.durable_sync);
  if (!store.ok()) return store.status();
  absl::StatusOr<uint64_t> position = (*store)->Position(options.durable);
  if (!position.ok()) return position.status();
  JetStreamConnection::Options link_options;
  link_options.url = options.url;
  link_options.name = absl::StrCat("txcoord consumer ", options.durable);
  link_options.connect_timeout = options.connect_timeout;
  absl::StatusOr<std::unique_ptr<JetStreamConnection>> connection =
      JetStreamConnection::Connect(link_options);
  if (!connection.ok()) return connection.status();
  auto impl = std::make_unique<Impl>(std::move(options), std::move(apply), std::move(*store),
                                     std::move(*connection));
  if (absl::Status status = impl->Resync(*position); !status.ok()) return status;
  return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() { Stop(); }
void Consumer::Start() { impl_->Start(); }
void Consumer::Stop() { impl_->Stop(); }
ConsumerStats Consumer::stats() const { return impl_->stats(); }

}  // namespace txcoord
