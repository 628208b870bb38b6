// JetStream helpers for the tests, benchmarks and demo of transactional
// messages: create a stream, and publish messages in the wire format of
// txagent's relay (Nats-Msg-Id, Txcoord-Key, Txcoord-Txid headers), so that
// consumers can be tested without a relay.
//
//   ASSERT_OK(CreateStream(nats->url(), {"BANK", {"bank.>"}}));
//   auto publisher = TestPublisher::Connect(nats->url());
//   OutboundTestMessage message;
//   message.id = "c1.5.42/accounts/0";
//   message.topic = "bank.transfers";
//   (*publisher)->Publish(message);
#ifndef TXCOORD_HARNESS_JETSTREAM_H_
#define TXCOORD_HARNESS_JETSTREAM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txcoord::testing {

struct StreamSpec {
  std::string name;
  std::vector<std::string> subjects;
  // JetStream drops a second message with the same Nats-Msg-Id within it.
  absl::Duration duplicate_window = absl::Minutes(2);
  // Larger messages are refused (a publish error the relay counts as an
  // attempt). 0: the server's limit.
  int32_t max_msg_size = 0;
};

// Creates a stream with file storage (it survives a server restart). OK if
// one with the same configuration exists already.
absl::Status CreateStream(const std::string& url, const StreamSpec& spec);

// A message as the relay publishes it.
struct OutboundTestMessage {
  std::string id;     // Nats-Msg-Id
  std::string topic;  // subject
  std::string key;    // Txcoord-Key, left out if empty
  std::string txid;   // Txcoord-Txid, left out if empty
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
};

struct PublishResult {
  uint64_t stream_seq = 0;
  bool duplicate = false;  // the stream already had this id within its window
};

// One connection; Publish waits for the stream's acknowledgement. Not
// thread-safe.
class TestPublisher final {
 public:
  static absl::StatusOr<std::unique_ptr<TestPublisher>> Connect(const std::string& url);
  ~TestPublisher();
  TestPublisher(const TestPublisher&) = delete;
  TestPublisher& operator=(const TestPublisher&) = delete;

  absl::StatusOr<PublishResult> Publish(const OutboundTestMessage& message);

 private:
  class Handles;
  explicit TestPublisher(std::unique_ptr<Handles> handles);
  std::unique_ptr<Handles> handles_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_JETSTREAM_H_
