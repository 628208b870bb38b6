// txctl outbox list|show|retry|purge: an agent's transactional messages
// (AgentAdmin's outbox calls). All need --agent.
#include <iostream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "common/utf8.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::cli {
namespace {

std::unique_ptr<v1::AgentAdmin::Stub> Stub(const Invocation& invocation) {
  return v1::AgentAdmin::NewStub(ChannelTo(invocation, invocation.agent));
}

std::string StateName(v1::OutboxState state) {
  switch (state) {
    case v1::OUTBOX_STATE_PENDING:
      return "pending";
    case v1::OUTBOX_STATE_DELIVERED:
      return "delivered";
    case v1::OUTBOX_STATE_DEAD:
      return "dead";
    default:
      return "unknown";
  }
}

void WriteEntry(JsonWriter& json, const v1::OutboxEntry& e, bool with_payload) {
  json.BeginObject();
  json.Key("id").String(e.id());
  json.Key("seq").Int(e.seq());
  json.Key("topic").String(e.topic());
  json.Key("key").String(e.key());
  json.Key("txid").String(e.txid());
  json.Key("state").String(StateName(e.state()));
  json.Key("attempts").Int(e.attempts());
  json.Key("committed_unix_ms").Int(e.committed_unix_ms());
  json.Key("next_attempt_unix_ms").Int(e.next_attempt_unix_ms());
  json.Key("delivered_unix_ms").Int(e.delivered_unix_ms());
  json.Key("last_error").String(e.last_error());
  json.Key("payload_bytes").Int(e.payload_bytes());
  json.Key("headers").BeginObject();
  for (const v1::Header& h : e.headers()) json.Key(h.name()).String(h.value());
  json.EndObject();
  if (with_payload) json.Key("payload_base64").String(absl::Base64Escape(e.payload()));
  json.EndObject();
}

int Finish(const Invocation& invocation, const grpc::Status& status, const std::string& what) {
  return ReportError(invocation, FromGrpcStatus(status),
                     absl::StrCat(what, " at ", invocation.agent));
}

int RunAction(const Invocation& invocation, const std::string& command,
              const v1::OutboxActionResponse& response) {
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject().Key("affected").Int(response.affected());
    json.Key("message").String(response.message()).EndObject();
    std::cout << json.str() << "\n";
  } else {
    std::cout << command << " at " << invocation.agent << ": " << response.message() << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunOutboxList(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("outbox list", "--agent=HOST:PORT is required");
  v1::ListOutboxRequest request;
  const std::string state = invocation.line.Get("state", "");
  if (state == "pending") {
    request.set_state(v1::OUTBOX_STATE_PENDING);
  } else if (state == "delivered") {
    request.set_state(v1::OUTBOX_STATE_DELIVERED);
  } else if (state == "dead") {
    request.set_state(v1::OUTBOX_STATE_DEAD);
  } else if (!state.empty()) {
    return UsageError("outbox list", "--state must be pending, delivered or dead");
  }
  int limit = 0;
  if (invocation.line.Has("limit") &&
      (!absl::SimpleAtoi(invocation.line.Get("limit", ""), &limit) || limit < 1 || limit > 10000)) {
    return UsageError("outbox list", "--limit must be 1 to 10000");
  }
  request.set_limit(limit);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::ListOutboxResponse response;
  grpc::Status status = Stub(invocation)->ListOutbox(&context, request, &response);
  if (!status.ok()) return Finish(invocation, status, "listing the outbox");
  const v1::OutboxSummary& s = response.summary();
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("pending").Int(s.pending());
    json.Key("delivered").Int(s.delivered());
    json.Key("dead").Int(s.dead());
    json.Key("oldest_pending_age_ms").Int(s.oldest_pending_age_ms());
    json.Key("relay").String(s.relay());
    json.Key("last_error").String(s.last_error());
    json.Key("messages").BeginArray();
    for (const v1::OutboxEntry& e : response.messages()) WriteEntry(json, e, false);
    json.EndArray().EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  std::cout << "outbox at " << invocation.agent << ": " << s.pending() << " pending, " << s.dead()
            << " dead, " << s.delivered() << " delivered (kept)";
  if (s.pending() > 0) {
    std::cout << "; oldest pending " << FormatAge(absl::Milliseconds(s.oldest_pending_age_ms()));
  }
  std::cout << "\nrelay: " << s.relay() << "\n";
  if (!s.last_error().empty()) std::cout << "last error: " << s.last_error() << "\n";
  const absl::Time now = absl::Now();
  Table table({"ID", "STATE", "TOPIC", "KEY", "COMMITTED", "ATTEMPTS", "LAST ERROR"});
  for (const v1::OutboxEntry& e : response.messages()) {
    table.AddRow({e.id(), StateName(e.state()), e.topic(), OrDash(Truncate(e.key(), 24)),
                  Ago(e.committed_unix_ms(), now) + " ago", std::to_string(e.attempts()),
                  OrDash(Truncate(e.last_error(), 60))});
  }
  std::cout << table.Render() << response.messages_size() << " message(s) listed ("
            << (state.empty() ? "pending and dead" : state) << ", oldest first)\n";
  return kExitOk;
}

int RunOutboxShow(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("outbox show", "--agent=HOST:PORT is required");
  v1::GetOutboxMessageRequest request;
  request.set_id(invocation.args[0]);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::OutboxEntry e;
  grpc::Status status = Stub(invocation)->GetOutboxMessage(&context, request, &e);
  if (!status.ok()) return Finish(invocation, status, "outbox show " + request.id());
  if (invocation.json) {
    JsonWriter json;
    WriteEntry(json, e, true);
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  std::cout << "message    " << e.id() << " (seq " << e.seq() << ")\n"
            << "state      " << StateName(e.state()) << ", " << e.attempts() << " attempt(s)\n"
            << "topic      " << e.topic() << "\n"
            << "key        " << OrDash(e.key()) << "\n"
            << "txid       " << OrDash(e.txid()) << "\n"
            << "committed  " << Timestamp(e.committed_unix_ms()) << "\n";
  if (e.state() == v1::OUTBOX_STATE_PENDING) {
    std::cout << "next try   " << Timestamp(e.next_attempt_unix_ms()) << "\n";
  }
  if (e.state() == v1::OUTBOX_STATE_DELIVERED) {
    std::cout << "delivered  " << Timestamp(e.delivered_unix_ms()) << "\n";
  }
  if (!e.last_error().empty()) std::cout << "last error " << e.last_error() << "\n";
  for (const v1::Header& h : e.headers())
    std::cout << "header     " << h.name() << ": " << h.value() << "\n";
  std::cout << "payload    " << e.payload_bytes() << " bytes"
            << (IsValidUtf8(e.payload()) ? ": " + Truncate(e.payload(), 200)
                                         : " (binary; --json gives it in base64)")
            << "\n";
  return kExitOk;
}

int RunOutboxRetry(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("outbox retry", "--agent=HOST:PORT is required");
  if (invocation.args.empty() && !invocation.line.Has("all-dead")) {
    return UsageError("outbox retry", "give message ids, or --all-dead for every dead message");
  }
  v1::RetryOutboxRequest request;
  for (const std::string& id : invocation.args) request.add_ids(id);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::OutboxActionResponse response;
  grpc::Status status = Stub(invocation)->RetryOutbox(&context, request, &response);
  if (!status.ok()) return Finish(invocation, status, "outbox retry");
  return RunAction(invocation, "outbox retry", response);
}

int RunOutboxPurge(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("outbox purge", "--agent=HOST:PORT is required");
  const bool delivered = invocation.line.Has("delivered");
  const bool dead = invocation.line.Has("dead");
  if (delivered == dead)
    return UsageError("outbox purge", "give exactly one of --delivered or --dead");
  v1::PurgeOutboxRequest request;
  request.set_state(delivered ? v1::OUTBOX_STATE_DELIVERED : v1::OUTBOX_STATE_DEAD);
  for (const std::string& id : invocation.args) request.add_ids(id);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::OutboxActionResponse response;
  grpc::Status status = Stub(invocation)->PurgeOutbox(&context, request, &response);
  if (!status.ok()) return Finish(invocation, status, "outbox purge");
  return RunAction(invocation, "outbox purge", response);
}

}  // namespace txcoord::cli
