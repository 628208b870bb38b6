// The consumer's side of NATS JetStream, over the libnats C client: status
// mapping, a connection that reconnects forever, and a durable pull
// consumer that resumes exactly after the last stream sequence the
// consumer's database applied. Internal to txcoord_consumer.
#ifndef TXCOORD_CLIENT_JETSTREAM_LINK_H_
#define TXCOORD_CLIENT_JETSTREAM_LINK_H_

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/consumer.h"

namespace txcoord::consumer_internal {

// OK for NATS_OK; otherwise a status whose code says what to do:
// UNAVAILABLE (no server, connection lost: retry), DEADLINE_EXCEEDED
// (timeout), NOT_FOUND (stream or consumer missing), INVALID_ARGUMENT.
// The message starts with `what` and carries libnats's last error text.
absl::Status FromNats(natsStatus status, absl::string_view what,
                      jsErrCode js_error = static_cast<jsErrCode>(0));

struct NatsDeleter {
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// One connection with its JetStream context. libnats reconnects on its own,
// forever, with a growing jittered wait; the disconnect counter lets the
// owner notice that messages may have been lost in flight. Thread-safe as
// libnats is; the object must outlive every subscription made on it.
class JetStreamConnection final {
 public:
  struct Options {
    std::string url;   // "nats://host:port", or several separated by commas
    std::string name;  // shown by the server's monitoring
    absl::Duration connect_timeout = absl::Seconds(5);
    absl::Duration reconnect_wait = absl::Milliseconds(250);
    absl::Duration request_timeout = absl::Seconds(5);  // JetStream API calls
  };
  // UNAVAILABLE if no server answers at `url`, INVALID_ARGUMENT if it is
  // not a NATS URL.
  static absl::StatusOr<std::unique_ptr<JetStreamConnection>> Connect(const Options& options);
  ~JetStreamConnection();
  JetStreamConnection(const JetStreamConnection&) = delete;
  JetStreamConnection& operator=(const JetStreamConnection&) = delete;

  natsConnection* connection() const { return connection_.get(); }
  jsCtx* js() const { return js_.get(); }
  // How often the connection was lost so far (counted on libnats's thread).
  uint64_t disconnects() const { return disconnects_.load(std::memory_order_acquire); }

 private:
  JetStreamConnection() = default;
  static void OnDisconnected(natsConnection* connection, void* closure);
  static void OnClosed(natsConnection* connection, void* closure);

  std::atomic<uint64_t> disconnects_{0};
  // libnats calls back on a thread of its own, even after Close returns;
  // its closed callback comes last, so the destructor waits for it.
  absl::Notification closed_;
  NatsPtr<natsConnection> connection_;
  NatsPtr<jsCtx> js_;
};

// What the server says about an existing durable consumer.
struct DurableState {
  uint64_t delivered_stream = 0;  // last stream sequence delivered
  uint64_t delivered_consumer = 0;
  uint64_t ack_floor_stream = 0;  // every message up to here is acknowledged
  int64_t ack_pending = 0;        // delivered, neither acked nor terminated
  int64_t redelivery_pending = 0;
  std::string filter_subject;
  bool ack_explicit = false;
  int64_t max_deliver = 0;
  absl::Duration ack_wait;
  int64_t max_ack_pending = 0;
};

// Whether the durable consumer can go on as it is: nothing is
// unacknowledged (an unacked message would only come back after ack_wait,
// behind later ones), it delivered nothing past `position` (the last stream
// sequence the database committed), and its configuration is the one
// `options` asks for. Otherwise it is deleted and recreated to start at
// position + 1. With a filter subject the server's delivered sequence also
// moves over messages of other subjects, so there it may pass `position`;
// that also lets through a consumer whose database lost commits (restored
// from a backup): recreate the durable consumer by hand after a restore.
bool CanResume(const DurableState& state, uint64_t position, const ConsumerOptions& options);

// A message fetched from the durable consumer, with the handle to ack it.
struct Delivery {
  InboundMessage message;
  uint64_t consumer_seq = 0;  // the consumer's delivery count: gapless per consumer
  NatsPtr<natsMsg> handle;
};

// A durable pull consumer of one stream bound to a subscription.
// Not thread-safe: one thread fetches and acks.
class DurableConsumer final {
 public:
  // Looks the durable up and keeps it if CanResume says so, else (re)creates
  // it starting after `position`; then subscribes. NOT_FOUND names a missing
  // stream.
  static absl::StatusOr<std::unique_ptr<DurableConsumer>> Open(JetStreamConnection* connection,
                                                               const ConsumerOptions& options,
                                                               uint64_t position);
  DurableConsumer(const DurableConsumer&) = delete;
  DurableConsumer& operator=(const DurableConsumer&) = delete;

  // True if Open had to recreate the consumer.
  bool recreated() const { return recreated_; }
  // The consumer sequence of the last delivery made before this
  // subscription: the next delivery carries this + 1.
  uint64_t delivered_before() const { return delivered_before_; }

  // Up to `batch` messages in stream order, waiting up to `wait` for the
  // first. An empty vector if none came.
  absl::StatusOr<std::vector<Delivery>> Fetch(int batch, absl::Duration wait);

  // Acknowledgements, sent without waiting for the server: a lost one makes
  // the server deliver the message again, which the caller recognises.
  absl::Status Ack(Delivery& delivery);
  absl::Status Nak(Delivery& delivery);
  absl::Status Term(Delivery& delivery);

 private:
  DurableConsumer() = default;

  std::string stream_;
  bool recreated_ = false;
  uint64_t delivered_before_ = 0;
  NatsPtr<natsSubscription> subscription_;
};

// The headers of the relay's wire format.
inline constexpr char kMsgIdHeader[] = "Nats-Msg-Id";
inline constexpr char kKeyHeader[] = "Txcoord-Key";
inline constexpr char kTxidHeader[] = "Txcoord-Txid";

}  // namespace txcoord::consumer_internal

#endif  // TXCOORD_CLIENT_JETSTREAM_LINK_H_
