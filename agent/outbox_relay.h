// The outbox relay: a thread in txagent that publishes committed outbox
// messages to NATS JetStream (Nats-Msg-Id = the message id, so the stream
// drops a republished duplicate within its window), waits for the
// stream's acknowledgement, and then marks them delivered; with backoff,
// per-key order and dead-lettering as relay_schedule.h decides. Delivered
// messages are deleted after a retention period. One relay per database:
// an exclusive lock on a file beside it; a second agent on the same file
// waits as a standby. Without a broker URL it relays nothing and says so:
// messages wait in the outbox.
//
//   auto relay = OutboxRelay::Start(participant, options, &registry);
//   participant_options.on_outbox_pending = [&] { relay->Wake(); };
#ifndef TXCOORD_AGENT_OUTBOX_RELAY_H_
#define TXCOORD_AGENT_OUTBOX_RELAY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/relay_schedule.h"
#include "common/metrics.h"
#include "common/scheduler.h"
#include "participant/participant.h"

namespace txcoord::participant {

struct OutboxRelayOptions {
  std::string nats_url;  // e.g. nats://127.0.0.1:4222; empty: no broker
  // Made if missing, capturing `stream_subjects`; empty: the streams are
  // the operator's to make (a subject no stream captures is not delivered:
  // the relay retries and reports it).
  std::string stream;
  std::vector<std::string> stream_subjects;
  absl::Duration duplicate_window = absl::Minutes(2);
  std::string lock_path;  // the database's path + "-relay.lock"
  RelayPolicy policy;
  absl::Duration publish_timeout = absl::Seconds(5);
  absl::Duration retention = absl::Hours(1);  // of delivered messages
  size_t batch = 256;                         // messages in flight at most
  // The time rows are due, stamped and kept by (on the participant's clock:
  // ParticipantOptions::clock); the relay's own waits on its thread are on
  // real time. Must outlive the relay.
  Clock* clock = RealClock();
};

// What the relay is doing, in words, for operators.
struct RelayState {
  std::string description;  // "relaying to ...", "standby: ...", ...
  std::string last_error;   // latest failure, empty if none yet
};

// Thread-safe.
class OutboxRelay final {
 public:
  // Starts the relay thread. `participant` and `registry` must outlive the
  // relay; the relay's metrics are registered in `registry` (may be null).
  // INVALID_ARGUMENT for options that cannot work (no lock path).
  static absl::StatusOr<std::unique_ptr<OutboxRelay>> Start(Participant* participant,
                                                            OutboxRelayOptions options,
                                                            MetricsRegistry* registry);
  ~OutboxRelay();  // Stop()
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // New messages are pending: look now rather than at the next poll. Cheap;
  // safe under the participant's lock.
  void Wake();
  // Stops the thread after the round in flight (at most publish_timeout)
  // and releases the lock. Idempotent.
  void Stop();
  RelayState state() const;

  // The retry policy and the retention of delivered messages in force, and
  // changes of them while the relay runs (the config centre): a failure
  // recorded from now on gets the new policy (a backoff already stored in
  // a row keeps its time); the next cleanup, which the change brings
  // forward, uses the new retention.
  RelayPolicy policy() const;
  absl::Duration retention() const;
  void SetPolicy(const RelayPolicy& policy);
  void SetRetention(absl::Duration retention);

 private:
  class Loop;
  explicit OutboxRelay(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_OUTBOX_RELAY_H_
