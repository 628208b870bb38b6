// Transactional messages at an agent: what a service adds to its branch
// (OutboxMessage), the checks every message passes before it is accepted,
// the ids that every later hop deduplicates on, and the compact encoding in
// which a prepared branch keeps its messages. docs/messaging.md has the
// model; outbox_store.h has the table the messages land in at commit.
#ifndef TXCOORD_PARTICIPANT_OUTBOX_H_
#define TXCOORD_PARTICIPANT_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord::participant {

struct OutboxMessage {
  std::string topic;                                         // the broker subject
  std::string key;                                           // ordering key; empty: unordered
  std::string payload;                                       // opaque bytes
  std::vector<std::pair<std::string, std::string>> headers;  // the service's own
};

// Limits on what a service may publish (ParticipantOptions::outbox).
struct OutboxLimits {
  // Payload bytes of one message. The broker's own limit (NATS: 1 MiB by
  // default, headers included) must be larger.
  size_t max_payload = 512 << 10;
  // Messages in one branch (all its calls together) or one local batch.
  size_t max_messages = 1024;
};

inline constexpr size_t kMaxTopicBytes = 256;
inline constexpr size_t kMaxKeyBytes = 256;
inline constexpr size_t kMaxHeaders = 16;
inline constexpr size_t kMaxHeaderNameBytes = 64;
inline constexpr size_t kMaxHeaderValueBytes = 1024;

// OK if `message` may be published; otherwise INVALID_ARGUMENT naming
// `field` (e.g. "messages[3].topic") and the rule it breaks. Pure.
absl::Status CheckOutboxMessage(absl::string_view field, const OutboxMessage& message,
                                const OutboxLimits& limits);

// The id of message `index` of the branch of `txid` at `participant`:
// "<txid>/<participant>/<index>". Stable across retries and restarts.
std::string BranchMessageId(absl::string_view txid, absl::string_view participant, size_t index);

// Messages and their ids, encoded to be stored with a prepared branch and
// decoded at commit. DATA_LOSS for bytes that are not such an encoding.
std::string EncodeMessages(const std::vector<OutboxMessage>& messages);
absl::StatusOr<std::vector<OutboxMessage>> DecodeMessages(absl::string_view encoded);

// Headers alone (the outbox table keeps them in one column).
std::string EncodeHeaders(const std::vector<std::pair<std::string, std::string>>& headers);
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> DecodeHeaders(
    absl::string_view encoded);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_OUTBOX_H_
