#include "harness/jetstream.h"

#include <nats/nats.h>

#include "absl/strings/str_cat.h"
#include "client/jetstream_link.h"

namespace txcoord::testing {

using consumer_internal::FromNats;
using consumer_internal::JetStreamConnection;
using consumer_internal::NatsPtr;

class TestPublisher::Handles final {
 public:
  std::unique_ptr<JetStreamConnection> connection;
};

namespace {

absl::StatusOr<std::unique_ptr<JetStreamConnection>> Connect(const std::string& url) {
  JetStreamConnection::Options options;
  options.url = url;
  options.name = "txcoord test publisher";
  return JetStreamConnection::Connect(options);
}

}  // namespace

absl::Status CreateStream(const std::string& url, const StreamSpec& spec) {
  absl::StatusOr<std::unique_ptr<JetStreamConnection>> connection = Connect(url);
  if (!connection.ok()) return connection.status();
  std::vector<const char*> subjects;
  for (const std::string& subject : spec.subjects) subjects.push_back(subject.c_str());
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = spec.name.c_str();
  config.Subjects = subjects.data();
  config.SubjectsLen = static_cast<int>(subjects.size());
  config.Storage = js_FileStorage;
  config.Duplicates = absl::ToInt64Nanoseconds(spec.duplicate_window);
  if (spec.max_msg_size > 0) config.MaxMsgSize = spec.max_msg_size;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(nullptr, (*connection)->js(), &config, nullptr, &js_error);
  return FromNats(s, absl::StrCat("create stream ", spec.name), js_error);
}

absl::StatusOr<std::unique_ptr<TestPublisher>> TestPublisher::Connect(const std::string& url) {
  absl::StatusOr<std::unique_ptr<JetStreamConnection>> connection = testing::Connect(url);
  if (!connection.ok()) return connection.status();
  auto handles = std::make_unique<Handles>();
  handles->connection = std::move(*connection);
  return std::unique_ptr<TestPublisher>(new TestPublisher(std::move(handles)));
}

TestPublisher::TestPublisher(std::unique_ptr<Handles> handles) : handles_(std::move(handles)) {}
TestPublisher::~TestPublisher() = default;

absl::StatusOr<PublishResult> TestPublisher::Publish(const OutboundTestMessage& message) {
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, message.topic.c_str(), nullptr, message.payload.data(),
                                static_cast<int>(message.payload.size()));
  if (s != NATS_OK) return FromNats(s, "create message");
  NatsPtr<natsMsg> msg(raw);
  s = natsMsgHeader_Set(raw, consumer_internal::kMsgIdHeader, message.id.c_str());
  if (s == NATS_OK && !message.key.empty()) {
    s = natsMsgHeader_Set(raw, consumer_internal::kKeyHeader, message.key.c_str());
  }
  if (s == NATS_OK && !message.txid.empty()) {
    s = natsMsgHeader_Set(raw, consumer_internal::kTxidHeader, message.txid.c_str());
  }
  for (const auto& [name, value] : message.headers) {
    if (s == NATS_OK) s = natsMsgHeader_Add(raw, name.c_str(), value.c_str());
  }
  if (s != NATS_OK) return FromNats(s, "set headers");
  jsPubAck* raw_ack = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&raw_ack, handles_->connection->js(), raw, nullptr, &js_error);
  NatsPtr<jsPubAck> ack(raw_ack);
  if (s != NATS_OK) {
    return FromNats(s, absl::StrCat("publish ", message.id, " to ", message.topic), js_error);
  }
  return PublishResult{ack->Sequence, ack->Duplicate};
}

}  // namespace txcoord::testing
