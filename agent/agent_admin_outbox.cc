// The outbox half of AgentAdminService (txctl outbox ...): translation
// only; the participant's outbox calls do the work.
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/agent_admin_service.h"
#include "common/utf8.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {
namespace {

constexpr int kDefaultListLimit = 100;
constexpr int kMaxListLimit = 10000;
constexpr int kMaxIds = 10000;

v1::OutboxState ToProto(OutboxState state) {
  switch (state) {
    case OutboxState::kPending:
      return v1::OUTBOX_STATE_PENDING;
    case OutboxState::kDelivered:
      return v1::OUTBOX_STATE_DELIVERED;
    case OutboxState::kDead:
      return v1::OUTBOX_STATE_DEAD;
  }
  return v1::OUTBOX_STATE_UNSPECIFIED;
}

std::optional<OutboxState> FromProto(v1::OutboxState state) {
  switch (state) {
    case v1::OUTBOX_STATE_PENDING:
      return OutboxState::kPending;
    case v1::OUTBOX_STATE_DELIVERED:
      return OutboxState::kDelivered;
    case v1::OUTBOX_STATE_DEAD:
      return OutboxState::kDead;
    default:
      return std::nullopt;
  }
}

void ToProto(const OutboxRow& row, v1::OutboxEntry* out) {
  out->set_id(row.id);
  out->set_seq(row.seq);
  out->set_topic(row.message.topic);
  out->set_key(row.message.key);
  out->set_txid(row.txid);
  out->set_state(ToProto(row.state));
  out->set_attempts(row.attempts);
  out->set_committed_unix_ms(absl::ToUnixMillis(row.committed_at));
  if (row.state == OutboxState::kPending) {
    out->set_next_attempt_unix_ms(absl::ToUnixMillis(row.next_attempt));
  }
  if (row.state == OutboxState::kDelivered) {
    out->set_delivered_unix_ms(absl::ToUnixMillis(row.delivered_at));
  }
  out->set_last_error(row.last_error);
  out->set_payload_bytes(row.payload_bytes);
  for (const auto& [name, value] : row.message.headers) {
    v1::Header* header = out->add_headers();
    header->set_name(name);
    header->set_value(value);
  }
}

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// Message ids from the wire: UTF-8 text, not empty, at most kMaxIds.
grpc::Status IdsFromProto(const google::protobuf::RepeatedPtrField<std::string>& in,
                          std::vector<std::string>* ids) {
  if (in.size() > kMaxIds) {
    return Invalid(absl::StrCat(in.size(), " ids: at most ", kMaxIds, " per call"));
  }
  for (int i = 0; i < in.size(); ++i) {
    if (in[i].empty()) return Invalid(absl::StrCat("ids[", i, "] is empty"));
    if (grpc::Status s = ToGrpcStatus(CheckUtf8(absl::StrCat("ids[", i, "]"), in[i])); !s.ok()) {
      return s;
    }
    ids->push_back(in[i]);
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AgentAdminService::ListOutbox(grpc::ServerContext* context,
                                           const v1::ListOutboxRequest* request,
                                           v1::ListOutboxResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/ListOutbox");
      !admitted.ok()) {
    return admitted;
  }
  std::optional<OutboxState> state;
  if (request->state() != v1::OUTBOX_STATE_UNSPECIFIED) {
    state = FromProto(request->state());
    if (!state.has_value()) return Invalid("state must be PENDING, DELIVERED, DEAD or unspecified");
  }
  if (request->limit() < 0 || request->limit() > kMaxListLimit) {
    return Invalid(absl::StrCat("limit must be 0 (", kDefaultListLimit, ") to ", kMaxListLimit));
  }
  const int limit = request->limit() == 0 ? kDefaultListLimit : request->limit();
  absl::StatusOr<OutboxCounts> counts = participant_->CountOutbox();
  if (!counts.ok()) return ToGrpcStatus(counts.status());
  absl::StatusOr<std::vector<OutboxRow>> rows =
      participant_->ListOutbox(state, static_cast<size_t>(limit));
  if (!rows.ok()) return ToGrpcStatus(rows.status());
  v1::OutboxSummary* summary = response->mutable_summary();
  summary->set_pending(counts->pending);
  summary->set_delivered(counts->delivered);
  summary->set_dead(counts->dead);
  if (counts->oldest_pending.has_value()) {
    summary->set_oldest_pending_age_ms(
        absl::ToInt64Milliseconds(absl::Now() - *counts->oldest_pending));
  }
  if (relay_ != nullptr) {
    const RelayState relay = relay_->state();
    summary->set_relay(relay.description);
    summary->set_last_error(relay.last_error);
  } else {
    summary->set_relay("no relay in this process");
  }
  for (const OutboxRow& row : *rows) ToProto(row, response->add_messages());
  return grpc::Status::OK;
}

grpc::Status AgentAdminService::GetOutboxMessage(grpc::ServerContext* context,
                                                 const v1::GetOutboxMessageRequest* request,
                                                 v1::OutboxEntry* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/GetOutboxMessage");
      !admitted.ok()) {
    return admitted;
  }
  if (request->id().empty()) return Invalid("id is empty");
  if (grpc::Status s = ToGrpcStatus(CheckUtf8("id", request->id())); !s.ok()) return s;
  absl::StatusOr<OutboxRow> row = participant_->GetOutboxMessage(request->id());
  if (!row.ok()) return ToGrpcStatus(row.status());
  ToProto(*row, response);
  response->set_payload(row->message.payload);
  return grpc::Status::OK;
}

grpc::Status AgentAdminService::RetryOutbox(grpc::ServerContext* context,
                                            const v1::RetryOutboxRequest* request,
                                            v1::OutboxActionResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/RetryOutbox");
      !admitted.ok()) {
    return admitted;
  }
  std::vector<std::string> ids;
  if (grpc::Status s = IdsFromProto(request->ids(), &ids); !s.ok()) return s;
  absl::StatusOr<int64_t> retried = participant_->RetryOutbox(ids);
  if (!retried.ok()) return ToGrpcStatus(retried.status());
  response->set_affected(*retried);
  response->set_message(absl::StrCat(*retried, " message(s) pending again, due now",
                                     ids.empty() ? " (every dead one)" : ""));
  return grpc::Status::OK;
}

grpc::Status AgentAdminService::PurgeOutbox(grpc::ServerContext* context,
                                            const v1::PurgeOutboxRequest* request,
                                            v1::OutboxActionResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.AgentAdmin/PurgeOutbox");
      !admitted.ok()) {
    return admitted;
  }
  const std::optional<OutboxState> state = FromProto(request->state());
  if (!state.has_value() || *state == OutboxState::kPending) {
    return Invalid(
        "state must be DELIVERED or DEAD: pending messages are never purged (not delivered)");
  }
  std::vector<std::string> ids;
  if (grpc::Status s = IdsFromProto(request->ids(), &ids); !s.ok()) return s;
  absl::StatusOr<int64_t> purged = participant_->PurgeOutbox(*state, ids);
  if (!purged.ok()) return ToGrpcStatus(purged.status());
  response->set_affected(*purged);
  response->set_message(absl::StrCat(*purged, " ", OutboxStateName(*state), " message(s) deleted"));
  return grpc::Status::OK;
}

}  // namespace txcoord::participant
