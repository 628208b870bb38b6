#include "client/jetstream_link.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace txcoord::consumer_internal {
namespace {

int64_t ToNatsMs(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

bool IsNotFound(natsStatus status, jsErrCode js_error, jsErrCode specific) {
  return status == NATS_NOT_FOUND || js_error == specific;
}

// The headers of `message`, without the ones the wire format defines.
std::vector<std::pair<std::string, std::string>> UserHeaders(natsMsg* message) {
  std::vector<std::pair<std::string, std::string>> headers;
  const char** keys = nullptr;
  int key_count = 0;
  if (natsMsgHeader_Keys(message, &keys, &key_count) != NATS_OK) return headers;
  for (int k = 0; k < key_count; ++k) {
    std::string key = keys[k];
    if (key == kMsgIdHeader || key == kKeyHeader || key == kTxidHeader) continue;
    const char** values = nullptr;
    int value_count = 0;
    if (natsMsgHeader_Values(message, keys[k], &values, &value_count) != NATS_OK) continue;
    for (int v = 0; v < value_count; ++v) headers.emplace_back(key, values[v]);
    free(static_cast<void*>(values));
  }
  free(static_cast<void*>(keys));
  return headers;
}

std::string Header(natsMsg* message, const char* name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(message, name, &value) != NATS_OK || value == nullptr) return "";
  return value;
}

absl::StatusOr<Delivery> ReadDelivery(NatsPtr<natsMsg> handle, const std::string& stream) {
  jsMsgMetaData* raw_meta = nullptr;
  if (natsStatus s = natsMsg_GetMetaData(&raw_meta, handle.get()); s != NATS_OK) {
    return FromNats(s, "read a JetStream message's metadata");
  }
  NatsPtr<jsMsgMetaData> meta(raw_meta);
  Delivery delivery;
  InboundMessage& message = delivery.message;
  message.topic = natsMsg_GetSubject(handle.get());
  message.stream_seq = meta->Sequence.Stream;
  message.deliveries = static_cast<int>(meta->NumDelivered);
  message.id = Header(handle.get(), kMsgIdHeader);
  // Not published by a relay: the stream position is the only stable name.
  if (message.id.empty()) message.id = absl::StrCat(stream, ":", message.stream_seq);
  message.key = Header(handle.get(), kKeyHeader);
  message.txid = Header(handle.get(), kTxidHeader);
  message.headers = UserHeaders(handle.get());
  const char* data = natsMsg_GetData(handle.get());
  message.payload.assign(data != nullptr ? data : "",
                         static_cast<size_t>(natsMsg_GetDataLength(handle.get())));
  delivery.consumer_seq = meta->Sequence.Consumer;
  delivery.handle = std::move(handle);
  return delivery;
}

}  // namespace

absl::Status FromNats(natsStatus status, absl::string_view what, jsErrCode js_error) {
  if (status == NATS_OK) return absl::OkStatus();
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string message = absl::StrCat(what, ": ", natsStatus_GetText(status));
  if (detail != nullptr && *detail != '\0' && last == status)
    absl::StrAppend(&message, " (", detail, ")");
  if (js_error != 0) absl::StrAppend(&message, " [JetStream error ", js_error, "]");
  switch (status) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(message);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(message);
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_ADDRESS_MISSING:
      return absl::InvalidArgumentError(message);
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_NOT_YET_CONNECTED:
    case NATS_SLOW_CONSUMER:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<JetStreamConnection>> JetStreamConnection::Connect(
    const Options& options) {
  if (options.url.empty()) return absl::InvalidArgumentError("no NATS URL given");
  natsOptions* raw_options = nullptr;
  if (natsStatus s = natsOptions_Create(&raw_options); s != NATS_OK) {
    return FromNats(s, "create NATS options");
  }
  NatsPtr<natsOptions> nats_options(raw_options);
  std::unique_ptr<JetStreamConnection> link(new JetStreamConnection());
  natsStatus s = natsOptions_SetURL(raw_options, options.url.c_str());
  if (s == NATS_OK && !options.name.empty())
    s = natsOptions_SetName(raw_options, options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(raw_options, ToNatsMs(options.connect_timeout));
  // A consumer outlives any restart of the server: never give up.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(raw_options, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(raw_options, ToNatsMs(options.reconnect_wait));
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(raw_options, 100, 1000);
  // A half-open connection (the server's host gone) shows in seconds.
  if (s == NATS_OK) s = natsOptions_SetPingInterval(raw_options, 5000);
  if (s == NATS_OK) {
    s = natsOptions_SetDisconnectedCB(raw_options, &JetStreamConnection::OnDisconnected,
                                      link.get());
  }
  if (s == NATS_OK)
    s = natsOptions_SetClosedCB(raw_options, &JetStreamConnection::OnClosed, link.get());
  if (s != NATS_OK) return FromNats(s, absl::StrCat("NATS options for ", options.url));
  natsConnection* connection = nullptr;
  s = natsConnection_Connect(&connection, raw_options);
  if (s != NATS_OK) return FromNats(s, absl::StrCat("connect to NATS at ", options.url));
  link->connection_.reset(connection);
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = ToNatsMs(options.request_timeout);
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, connection, &js_options);
  if (s != NATS_OK) return FromNats(s, "JetStream context");
  link->js_.reset(js);
  return link;
}

JetStreamConnection::~JetStreamConnection() {
  if (connection_ == nullptr) return;  // never connected: no callback pending
  natsConnection_Close(connection_.get());
  // The callbacks point at this object. Bounded, so that a libnats that
  // never calls back costs a leak-like wait rather than a hang.
  if (!closed_.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    TXLOG(ERROR) << "NATS connection did not report closing; its callbacks may outlive it";
  }
}

void JetStreamConnection::OnDisconnected(natsConnection*, void* closure) {
  static_cast<JetStreamConnection*>(closure)->disconnects_.fetch_add(1, std::memory_order_acq_rel);
}

void JetStreamConnection::OnClosed(natsConnection*, void* closure) {
  static_cast<JetStreamConnection*>(closure)->closed_.Notify();
}

bool CanResume(const DurableState& state, uint64_t position, const ConsumerOptions& options) {
  bool delivered_past = state.delivered_stream > position && options.filter_subject.empty();
  return state.ack_pending == 0 && state.redelivery_pending == 0 && !delivered_past &&
         state.ack_floor_stream == state.delivered_stream && state.ack_explicit &&
         state.max_deliver <= 0 && state.filter_subject == options.filter_subject &&
         state.ack_wait == options.ack_wait && state.max_ack_pending == options.max_ack_pending;
}

absl::StatusOr<std::unique_ptr<DurableConsumer>> DurableConsumer::Open(
    JetStreamConnection* connection, const ConsumerOptions& options, uint64_t position) {
  jsCtx* js = connection->js();
  const char* stream = options.stream.c_str();
  const char* durable = options.durable.c_str();
  jsErrCode js_error = static_cast<jsErrCode>(0);
  jsStreamInfo* stream_info = nullptr;
  natsStatus s = js_GetStreamInfo(&stream_info, js, stream, nullptr, &js_error);
  NatsPtr<jsStreamInfo> stream_owner(stream_info);
  if (s != NATS_OK && IsNotFound(s, js_error, JSStreamNotFoundErr)) {
    return absl::NotFoundError(
        absl::StrCat("JetStream stream \"", options.stream, "\" does not exist at ", options.url));
  }
  if (s != NATS_OK) return FromNats(s, absl::StrCat("look up stream ", options.stream), js_error);

  std::unique_ptr<DurableConsumer> consumer(new DurableConsumer());
  consumer->stream_ = options.stream;
  jsConsumerInfo* info = nullptr;
  s = js_GetConsumerInfo(&info, js, stream, durable, nullptr, &js_error);
  NatsPtr<jsConsumerInfo> info_owner(info);
  bool exists = s == NATS_OK;
  if (!exists && !IsNotFound(s, js_error, JSConsumerNotFoundErr)) {
    return FromNats(s, absl::StrCat("look up consumer ", options.stream, "/", options.durable),
                    js_error);
  }
  bool keep = false;
  if (exists) {
    DurableState state;
    state.delivered_stream = info->Delivered.Stream;
    state.delivered_consumer = info->Delivered.Consumer;
    state.ack_floor_stream = info->AckFloor.Stream;
    state.ack_pending = info->NumAckPending;
    state.redelivery_pending = info->NumRedelivered;
    state.filter_subject =
        info->Config->FilterSubject != nullptr ? info->Config->FilterSubject : "";
    state.ack_explicit = info->Config->AckPolicy == js_AckExplicit;
    state.max_deliver = info->Config->MaxDeliver;
    state.ack_wait = absl::Nanoseconds(info->Config->AckWait);
    state.max_ack_pending = info->Config->MaxAckPending;
    keep = CanResume(state, position, options);
    if (keep) {
      consumer->delivered_before_ = state.delivered_consumer;
    } else {
      TXLOG(INFO) << "consumer " << options.stream << "/" << options.durable
                  << " restarts after stream sequence " << position << " (it had delivered up to "
                  << state.delivered_stream << ", acked up to " << state.ack_floor_stream << ", "
                  << state.ack_pending << " unacked)";
      s = js_DeleteConsumer(js, stream, durable, nullptr, &js_error);
      if (s != NATS_OK && !IsNotFound(s, js_error, JSConsumerNotFoundErr)) {
        return FromNats(s, absl::StrCat("delete consumer ", options.durable), js_error);
      }
    }
  }
  if (!keep) {
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.Durable = durable;
    config.AckPolicy = js_AckExplicit;
    config.AckWait = absl::ToInt64Nanoseconds(options.ack_wait);
    // Unlimited: after max_deliveries the consumer dead-letters a message
    // itself; a server giving up would skip it silently.
    config.MaxDeliver = -1;
    config.MaxAckPending = options.max_ack_pending;
    if (!options.filter_subject.empty()) config.FilterSubject = options.filter_subject.c_str();
    if (position == 0) {
      config.DeliverPolicy = js_DeliverAll;
    } else {
      config.DeliverPolicy = js_DeliverByStartSequence;
      config.OptStartSeq = position + 1;
    }
    s = js_AddConsumer(nullptr, js, stream, &config, nullptr, &js_error);
    if (s != NATS_OK) {
      return FromNats(s, absl::StrCat("create consumer ", options.stream, "/", options.durable),
                      js_error);
    }
    consumer->recreated_ = exists;
  }
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = stream;
  sub_options.Consumer = durable;
  natsSubscription* subscription = nullptr;
  s = js_PullSubscribe(&subscription, js,
                       options.filter_subject.empty() ? nullptr : options.filter_subject.c_str(),
                       durable, nullptr, &sub_options, &js_error);
  if (s != NATS_OK) {
    return FromNats(s, absl::StrCat("subscribe to consumer ", options.durable), js_error);
  }
  consumer->subscription_.reset(subscription);
  return consumer;
}

absl::StatusOr<std::vector<Delivery>> DurableConsumer::Fetch(int batch, absl::Duration wait) {
  natsMsgList list = {nullptr, 0};
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s =
      natsSubscription_Fetch(&list, subscription_.get(), batch, ToNatsMs(wait), &js_error);
  std::vector<NatsPtr<natsMsg>> owned;
  for (int i = 0; i < list.Count; ++i) {
    owned.emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;
  }
  natsMsgList_Destroy(&list);
  if (s == NATS_TIMEOUT && owned.empty()) return std::vector<Delivery>();
  if (s != NATS_OK && owned.empty()) return FromNats(s, "fetch", js_error);
  std::vector<Delivery> deliveries;
  deliveries.reserve(owned.size());
  for (NatsPtr<natsMsg>& handle : owned) {
    absl::StatusOr<Delivery> delivery = ReadDelivery(std::move(handle), stream_);
    if (!delivery.ok()) return delivery.status();
    deliveries.push_back(std::move(*delivery));
  }
  return deliveries;
}

absl::Status DurableConsumer::Ack(Delivery& delivery) {
  return FromNats(natsMsg_Ack(delivery.handle.get(), nullptr), "ack");
}
absl::Status DurableConsumer::Nak(Delivery& delivery) {
  return FromNats(natsMsg_Nak(delivery.handle.get(), nullptr), "nak");
}
absl::Status DurableConsumer::Term(Delivery& delivery) {
  return FromNats(natsMsg_Term(delivery.handle.get(), nullptr), "term");
}

}  // namespace txcoord::consumer_internal
