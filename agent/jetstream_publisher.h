// The relay's connection to NATS JetStream: publishes a group of outbox
// messages at once (asynchronously, each with Nats-Msg-Id = its id) and
// reports, per message, whether the stream acknowledged it, refused it, or
// could not be reached. Reconnects by itself (libnats); the relay decides
// what each result means (relay_schedule.h).
#ifndef TXCOORD_AGENT_JETSTREAM_PUBLISHER_H_
#define TXCOORD_AGENT_JETSTREAM_PUBLISHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "participant/outbox_store.h"

namespace txcoord::participant {

struct PublishResult {
  enum class Kind {
    kAcked,        // stored (or a duplicate the stream already had)
    kRefused,      // the stream answered with an error: counts as an attempt
    kUnavailable,  // no answer (broker down, no stream yet, timeout): retry
  };
  Kind kind = Kind::kUnavailable;
  std::string error;
  absl::Duration latency;  // publish to acknowledgement (kAcked)
};

// Not thread-safe: one relay thread uses it.
class JetStreamPublisher final {
 public:
  // Connects to `url` (reconnecting forever afterwards). UNAVAILABLE if the
  // broker cannot be reached now; INVALID_ARGUMENT for a bad URL.
  static absl::StatusOr<std::unique_ptr<JetStreamPublisher>> Connect(const std::string& url,
                                                                     const std::string& name,
                                                                     absl::Duration timeout);
  ~JetStreamPublisher();
  JetStreamPublisher(const JetStreamPublisher&) = delete;
  JetStreamPublisher& operator=(const JetStreamPublisher&) = delete;

  // Makes `stream` (file storage, capturing `subjects`) unless it exists.
  absl::Status EnsureStream(const std::string& stream, const std::vector<std::string>& subjects,
                            absl::Duration duplicate_window);

  // Publishes every row (topic as subject, headers Nats-Msg-Id,
  // Txcoord-Key, Txcoord-Txid and the row's own), then waits up to
  // `timeout` for the acknowledgements. One result per row, in order.
  std::vector<PublishResult> PublishAll(const std::vector<const OutboxRow*>& rows,
                                        absl::Duration timeout);

  bool connected() const;

 private:
  struct State;
  explicit JetStreamPublisher(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_JETSTREAM_PUBLISHER_H_
