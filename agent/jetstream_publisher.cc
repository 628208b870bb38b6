// Publishing outbox messages to JetStream with libnats (see
// jetstream_publisher.h).
#include "agent/jetstream_publisher.h"

#include <nats/nats.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace txcoord::participant {
namespace {

std::string NatsError(absl::string_view what, natsStatus s) {
  return absl::StrCat(what, ": ", natsStatus_GetText(s), " (", nats_GetLastError(nullptr), ")");
}

}  // namespace

struct JetStreamPublisher::State {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;

  // The group in flight: message id -> its index in `results`. Written by
  // PublishAll and by libnats' acknowledgement thread.
  absl::Mutex mu;
  absl::flat_hash_map<std::string, size_t> in_flight ABSL_GUARDED_BY(mu);
  std::vector<PublishResult> results ABSL_GUARDED_BY(mu);
  std::vector<absl::Time> sent_at ABSL_GUARDED_BY(mu);
  size_t answered ABSL_GUARDED_BY(mu) = 0;

  ~State() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (connection != nullptr) {
      natsConnection_Close(connection);
      natsConnection_Destroy(connection);
    }
    if (options != nullptr) natsOptions_Destroy(options);
  }

  // libnats' acknowledgement callback, on its own thread.
  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<State*>(closure);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) {
      absl::MutexLock lock(&self->mu);
      auto it = self->in_flight.find(id);
      if (it != self->in_flight.end()) {
        PublishResult& result = self->results[it->second];
        if (ack != nullptr) {
          result.kind = PublishResult::Kind::kAcked;
          result.latency = absl::Now() - self->sent_at[it->second];
        } else if (error != nullptr) {
          // An error code means the stream itself answered; anything else
          // (timeout, no responders: no stream for the subject, or
          // JetStream not up yet) is the broker out of reach.
          const bool refused = error->ErrCode != 0;
          result.kind = refused ? PublishResult::Kind::kRefused : PublishResult::Kind::kUnavailable;
          if (!refused && error->Err == NATS_NO_RESPONDERS) {
            result.error = "no JetStream stream captures this subject (no responders)";
          } else {
            result.error = absl::StrCat(
                refused ? "refused by JetStream: " : "not acknowledged: ",
                error->ErrText != nullptr ? error->ErrText : natsStatus_GetText(error->Err));
          }
        }
        self->in_flight.erase(it);
        ++self->answered;
      }
    }
    natsMsg_Destroy(msg);
  }
};

absl::StatusOr<std::unique_ptr<JetStreamPublisher>> JetStreamPublisher::Connect(
    const std::string& url, const std::string& name, absl::Duration timeout) {
  auto state = std::make_unique<State>();
  natsStatus s = natsOptions_Create(&state->options);
  if (s == NATS_OK) s = natsOptions_SetURL(state->options, url.c_str());
  if (s != NATS_OK) return absl::InvalidArgumentError(NatsError("broker URL " + url, s));
  const int64_t timeout_ms = absl::ToInt64Milliseconds(timeout);
  natsOptions_SetName(state->options, name.c_str());
  natsOptions_SetTimeout(state->options, timeout_ms);
  natsOptions_SetAllowReconnect(state->options, true);
  natsOptions_SetMaxReconnect(state->options, -1);
  natsOptions_SetReconnectWait(state->options, 250);
  s = natsConnection_Connect(&state->connection, state->options);
  if (s != NATS_OK) return absl::UnavailableError(NatsError("connecting to " + url, s));
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = timeout_ms;
  js_options.PublishAsync.AckHandler = &State::OnAck;
  js_options.PublishAsync.AckHandlerClosure = state.get();
  s = natsConnection_JetStream(&state->js, state->connection, &js_options);
  if (s != NATS_OK) return absl::UnavailableError(NatsError("JetStream context", s));
  return std::unique_ptr<JetStreamPublisher>(new JetStreamPublisher(std::move(state)));
}

JetStreamPublisher::JetStreamPublisher(std::unique_ptr<State> state) : state_(std::move(state)) {}
JetStreamPublisher::~JetStreamPublisher() = default;

bool JetStreamPublisher::connected() const {
  return natsConnection_Status(state_->connection) == NATS_CONN_STATUS_CONNECTED;
}

absl::Status JetStreamPublisher::EnsureStream(const std::string& stream,
                                              const std::vector<std::string>& subjects,
                                              absl::Duration duplicate_window) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, state_->js, stream.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return absl::OkStatus();
  }
  if (s != NATS_NOT_FOUND && code != JSStreamNotFoundErr) {
    return absl::UnavailableError(NatsError("looking up stream " + stream, s));
  }
  std::vector<const char*> subject_ptrs;
  for (const std::string& subject : subjects) subject_ptrs.push_back(subject.c_str());
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream.c_str();
  config.Subjects = subject_ptrs.data();
  config.SubjectsLen = static_cast<int>(subject_ptrs.size());
  config.Storage = js_FileStorage;
  config.Duplicates = absl::ToInt64Nanoseconds(duplicate_window);
  s = js_AddStream(&info, state_->js, &config, nullptr, &code);
  if (s != NATS_OK) {
    return absl::Status(
        code != 0 ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kUnavailable,
        NatsError("making stream " + stream, s));
  }
  jsStreamInfo_Destroy(info);
  return absl::OkStatus();
}

std::vector<PublishResult> JetStreamPublisher::PublishAll(const std::vector<const OutboxRow*>& rows,
                                                          absl::Duration timeout) {
  State& st = *state_;
  {
    absl::MutexLock lock(&st.mu);
    st.in_flight.clear();
    st.results.assign(rows.size(), PublishResult{});
    st.sent_at.assign(rows.size(), absl::Now());
    st.answered = 0;
  }
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = absl::ToInt64Milliseconds(timeout);
  size_t sent = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const OutboxRow& row = *rows[i];
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, row.message.topic.c_str(), nullptr, row.message.payload.data(),
                       static_cast<int>(row.message.payload.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", row.id.c_str());
    if (s == NATS_OK && !row.message.key.empty()) {
      s = natsMsgHeader_Set(msg, "Txcoord-Key", row.message.key.c_str());
    }
    if (s == NATS_OK && !row.txid.empty())
      s = natsMsgHeader_Set(msg, "Txcoord-Txid", row.txid.c_str());
    for (const auto& [name, value] : row.message.headers) {
      if (s == NATS_OK) s = natsMsgHeader_Add(msg, name.c_str(), value.c_str());
    }
    {
      absl::MutexLock lock(&st.mu);
      st.in_flight[row.id] = i;
      st.sent_at[i] = absl::Now();
    }
    if (s == NATS_OK) s = js_PublishMsgAsync(st.js, &msg, &options);
    if (s != NATS_OK) {
      natsMsg_Destroy(msg);  // still ours: the library takes it only on success
      absl::MutexLock lock(&st.mu);
      st.in_flight.erase(row.id);
      st.results[i].kind = PublishResult::Kind::kUnavailable;
      st.results[i].error = NatsError("publishing", s);
      continue;
    }
    ++sent;
  }
  if (sent > 0) js_PublishAsyncComplete(st.js, &options);
  // What is still unanswered is given up for this round: taken back from
  // the library, so that a late acknowledgement finds nothing to update.
  natsMsgList pending{};
  if (js_PublishAsyncGetPendingList(&pending, st.js) == NATS_OK) natsMsgList_Destroy(&pending);
  absl::MutexLock lock(&st.mu);
  for (const auto& [id, index] : st.in_flight) {
    st.results[index].kind = PublishResult::Kind::kUnavailable;
    st.results[index].error =
        absl::StrCat("no acknowledgement within ", absl::FormatDuration(timeout));
  }
  st.in_flight.clear();
  return st.results;
}

}  // namespace txcoord::participant
