// txagent's routes: JSON in, the Agent and AgentAdmin gRPC calls over the
// in-process channel, JSON out. Field names are the proto's; enums are
// their names without the prefix (VOTE_YES -> "YES").
#include "agent/http_api.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rpc/http_grpc.h"
#include "txcoord/v1/admin.grpc.pb.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::participant {
namespace {

// An Execute may wait up to 60 s for row locks (lock_timeout_ms) on top of
// its statements' own run time (--max_statement_time).
constexpr absl::Duration kExecuteTimeout = absl::Seconds(90);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

// The query parameters of a GET must all be known: a misspelt filter must
// not silently list everything.
absl::Status CheckQuery(const HttpRequest& req, const std::vector<std::string>& known) {
  for (const auto& [key, value] : req.query) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter \"", key, "\"",
                       known.empty() ? " (this endpoint takes none)" : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status StatementFromJson(const nlohmann::json& json, const std::string& where,
                               v1::Statement* out) {
  JsonFields fields(json, where);
  std::string sql;
  const bool has_sql = fields.Get("sql") != nullptr;
  if (absl::Status s = fields.Text("sql", &sql); !s.ok()) return s;
  const nlohmann::json* params = fields.Get("params");
  if (absl::Status s = fields.Finish(); !s.ok()) return s;
  if (!has_sql) return absl::InvalidArgumentError(absl::StrCat(where, ".sql is required"));
  out->set_sql(sql);
  if (params == nullptr) return absl::OkStatus();
  if (!params->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".params must be an array"));
  }
  for (size_t i = 0; i < params->size(); ++i) {
    absl::Status s =
        ValueFromJson((*params)[i], absl::StrCat(where, ".params[", i, "]"), out->add_params());
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// A message: {"topic", "key", "payload" (UTF-8 text) or "payload_base64",
// "headers": {"name": "value"}}; the agent checks the rest.
absl::Status MessageFromJson(const nlohmann::json& json, const std::string& where,
                             v1::OutboxMessage* out) {
  JsonFields fields(json, where);
  std::string topic, key, payload, payload_base64;
  if (absl::Status s = fields.Text("topic", &topic); !s.ok()) return s;
  if (absl::Status s = fields.Text("key", &key); !s.ok()) return s;
  const bool has_text = fields.Get("payload") != nullptr;
  if (absl::Status s = fields.Text("payload", &payload); !s.ok()) return s;
  const bool has_base64 = fields.Get("payload_base64") != nullptr;
  if (absl::Status s = fields.String("payload_base64", &payload_base64); !s.ok()) return s;
  const nlohmann::json* headers = fields.Get("headers");
  if (absl::Status s = fields.Finish(); !s.ok()) return s;
  if (has_text && has_base64) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": give payload or payload_base64, not both"));
  }
  if (has_base64 && !absl::Base64Unescape(payload_base64, &payload)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".payload_base64 is not base64"));
  }
  out->set_topic(topic);
  out->set_key(key);
  out->set_payload(payload);
  if (headers == nullptr) return absl::OkStatus();
  if (!headers->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".headers must be an object of strings"));
  }
  for (const auto& [name, value] : headers->items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".headers.", name, " must be a string"));
    }
    v1::Header* header = out->add_headers();
    header->set_name(name);
    header->set_value(value.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status MessagesFromJson(const nlohmann::json* json,
                              google::protobuf::RepeatedPtrField<v1::OutboxMessage>* out) {
  if (json == nullptr) return absl::OkStatus();
  if (!json->is_array()) return absl::InvalidArgumentError("messages must be an array");
  for (size_t i = 0; i < json->size(); ++i) {
    absl::Status s = MessageFromJson((*json)[i], absl::StrCat("messages[", i, "]"), out->Add());
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

nlohmann::json OutboxEntryToJson(const v1::OutboxEntry& e) {
  nlohmann::json headers = nlohmann::json::object();
  for (const v1::Header& h : e.headers()) headers[h.name()] = h.value();
  return {{"id", e.id()},
          {"seq", e.seq()},
          {"topic", e.topic()},
          {"key", e.key()},
          {"txid", e.txid()},
          {"state", EnumName(v1::OutboxState_Name(e.state()), "OUTBOX_STATE_")},
          {"attempts", e.attempts()},
          {"committed_unix_ms", e.committed_unix_ms()},
          {"next_attempt_unix_ms", e.next_attempt_unix_ms()},
          {"delivered_unix_ms", e.delivered_unix_ms()},
          {"last_error", e.last_error()},
          {"payload_bytes", e.payload_bytes()},
          {"headers", std::move(headers)}};
}

absl::Status ExecuteFromJson(const nlohmann::json& json, v1::ExecuteRequest* out) {
  JsonFields body(json);
  std::string txid;
  bool prepare = false;
  bool named_in_commit = false;
  bool carries_vote_proof = false;
  uint32_t lock_timeout_ms = 0;
  if (absl::Status s = body.Text("txid", &txid); !s.ok()) return s;
  if (absl::Status s = body.Bool("prepare", &prepare); !s.ok()) return s;
  if (absl::Status s = body.Bool("named_in_commit", &named_in_commit); !s.ok()) return s;
  if (absl::Status s = body.Bool("carries_vote_proof", &carries_vote_proof); !s.ok()) return s;
  if (absl::Status s = body.Uint32("lock_timeout_ms", &lock_timeout_ms); !s.ok()) return s;
  const nlohmann::json* statements = body.Get("statements");
  const nlohmann::json* messages = body.Get("messages");
  if (absl::Status s = body.Finish(); !s.ok()) return s;
  if (absl::Status s = MessagesFromJson(messages, out->mutable_messages()); !s.ok()) return s;
  if (statements == nullptr && out->messages_size() == 0) {
    return absl::InvalidArgumentError(
        "statements is required: [{\"sql\": \"...\", \"params\": [...]}, ...]");
  }
  // Set before a call with messages only returns: it is still the
  // transaction's (not a local one).
  out->set_txid(txid);
  out->set_prepare(prepare);
  out->set_named_in_commit(named_in_commit);
  out->set_carries_vote_proof(carries_vote_proof);
  out->set_lock_timeout_ms(lock_timeout_ms);
  if (statements == nullptr) return absl::OkStatus();
  if (!statements->is_array()) return absl::InvalidArgumentError("statements must be an array");
  for (size_t i = 0; i < statements->size(); ++i) {
    absl::Status s = StatementFromJson((*statements)[i], absl::StrCat("statements[", i, "]"),
                                       out->add_statements());
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

nlohmann::json ExecuteToJson(const v1::ExecuteResponse& response) {
  nlohmann::json results = nlohmann::json::array();
  for (const v1::StatementResult& r : response.results()) {
    nlohmann::json columns = nlohmann::json::array();
    for (const std::string& c : r.columns()) columns.push_back(c);
    nlohmann::json rows = nlohmann::json::array();
    for (const v1::Row& row : r.rows()) {
      nlohmann::json values = nlohmann::json::array();
      for (const v1::Value& v : row.values()) values.push_back(ValueToJson(v));
      rows.push_back(std::move(values));
    }
    results.push_back({{"columns", std::move(columns)},
                       {"rows", std::move(rows)},
                       {"changes", r.changes()},
                       {"last_insert_rowid", r.last_insert_rowid()}});
  }
  nlohmann::json ids = nlohmann::json::array();
  for (const std::string& id : response.message_ids()) ids.push_back(id);
  // The token as a decimal string: a 64-bit number is not exact in every
  // JSON reader.
  return {{"results", std::move(results)},
          {"message_ids", std::move(ids)},
          {"vote", response.vote() == v1::VOTE_UNSPECIFIED
                       ? nlohmann::json(nullptr)
                       : nlohmann::json(EnumName(v1::Vote_Name(response.vote()), "VOTE_"))},
          {"participant", response.branch_token() == 0 ? nlohmann::json(nullptr)
                                                       : nlohmann::json(response.participant())},
          {"branch_token", response.branch_token() == 0
                               ? nlohmann::json(nullptr)
                               : nlohmann::json(absl::StrCat(response.branch_token()))},
          // Base64, to be passed on to /v1/commit as it is.
          {"vote_proof", response.vote_proof().empty()
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(absl::Base64Escape(response.vote_proof()))},
          {"endpoint", response.vote_proof().empty() ? nlohmann::json(nullptr)
                                                     : nlohmann::json(response.endpoint())}};
}

// OUTCOME_UNSPECIFIED (not known yet) is null.
nlohmann::json OutcomeToJson(v1::Outcome outcome) {
  if (outcome == v1::OUTCOME_UNSPECIFIED) return nullptr;
  return EnumName(v1::Outcome_Name(outcome), "OUTCOME_");
}

nlohmann::json DecisionToJson(const v1::HeuristicDecision& d) {
  return {{"txid", d.txid()},
          {"coordinator", d.coordinator()},
          {"decision", OutcomeToJson(d.decision())},
          {"decided_unix_ms", d.decided_unix_ms()},
          {"reason", d.reason()},
          {"coordinator_outcome", OutcomeToJson(d.coordinator_outcome())},
          {"heuristic_mixed", d.heuristic_mixed()}};
}

}  // namespace

std::vector<HttpRoute> AgentHttpRoutes(std::shared_ptr<grpc::Channel> channel,
                                       std::function<std::string()> metrics) {
  auto agent = std::shared_ptr<v1::Agent::Stub>(v1::Agent::NewStub(channel));
  auto admin = std::shared_ptr<v1::AgentAdmin::Stub>(v1::AgentAdmin::NewStub(channel));
  using Stub = v1::Agent::Stub;
  using Admin = v1::AgentAdmin::Stub;
  std::vector<HttpRoute> routes;

  routes.push_back({"POST", "/v1/execute", HttpAccess::kData,
                    [agent](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      v1::ExecuteRequest request;
                      if (absl::Status s = ExecuteFromJson(req.body, &request); !s.ok()) return s;
                      v1::ExecuteResponse response;
                      absl::Status s = CallGrpc(agent.get(), &Stub::Execute, request, &response,
                                                kExecuteTimeout);
                      if (!s.ok()) return s;
                      return ExecuteToJson(response);
                    },
                    "/txcoord.v1.Agent/Execute"});

  routes.push_back(
      {"POST", "/v1/release", HttpAccess::kData,
       [agent](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         std::string txid;
         if (absl::Status s = body.Text("txid", &txid); !s.ok()) return s;
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::ReleaseRequest request;
         request.set_txid(txid);
         v1::ReleaseResponse response;
         absl::Status s = CallGrpc(agent.get(), &Stub::Release, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         return nlohmann::json{{"released", response.released()}, {"detail", response.detail()}};
       },
       "/txcoord.v1.Agent/Release"});

  routes.push_back(
      {"POST", "/v1/publish", HttpAccess::kData,
       [agent](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         std::string txid;
         if (absl::Status s = body.Text("txid", &txid); !s.ok()) return s;
         const nlohmann::json* messages = body.Get("messages");
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::PublishRequest request;
         request.set_txid(txid);
         if (absl::Status s = MessagesFromJson(messages, request.mutable_messages()); !s.ok()) {
           return s;
         }
         v1::PublishResponse response;
         absl::Status s = CallGrpc(agent.get(), &Stub::Publish, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         nlohmann::json ids = nlohmann::json::array();
         for (const std::string& id : response.message_ids()) ids.push_back(id);
         return nlohmann::json{{"message_ids", std::move(ids)}};
       },
       "/txcoord.v1.Agent/Publish"});

  // --- Operators (txctl's calls) ----------------------------------------------
  routes.push_back(
      {"GET", "/v1/admin/outbox", HttpAccess::kAdmin,
       [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         if (absl::Status s = CheckQuery(req, {"state", "limit"}); !s.ok()) return s;
         v1::ListOutboxRequest request;
         if (auto it = req.query.find("state"); it != req.query.end()) {
           v1::OutboxState state;
           if (!v1::OutboxState_Parse("OUTBOX_STATE_" + it->second, &state)) {
             return absl::InvalidArgumentError("state must be PENDING, DELIVERED or DEAD");
           }
           request.set_state(state);
         }
         if (auto it = req.query.find("limit"); it != req.query.end()) {
           int limit = 0;
           if (!absl::SimpleAtoi(it->second, &limit)) {
             return absl::InvalidArgumentError("limit must be a number");
           }
           request.set_limit(limit);
         }
         v1::ListOutboxResponse response;
         absl::Status s =
             CallGrpc(admin.get(), &Admin::ListOutbox, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         const v1::OutboxSummary& summary = response.summary();
         nlohmann::json messages = nlohmann::json::array();
         for (const v1::OutboxEntry& e : response.messages())
           messages.push_back(OutboxEntryToJson(e));
         return nlohmann::json{{"pending", summary.pending()},
                               {"delivered", summary.delivered()},
                               {"dead", summary.dead()},
                               {"oldest_pending_age_ms", summary.oldest_pending_age_ms()},
                               {"relay", summary.relay()},
                               {"last_error", summary.last_error()},
                               {"messages", std::move(messages)}};
       },
       "/txcoord.v1.AgentAdmin/ListOutbox"});

  routes.push_back({"GET", "/v1/admin/in-doubt", HttpAccess::kAdmin,
                    [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      if (absl::Status s = CheckQuery(req, {}); !s.ok()) return s;
                      v1::ListInDoubtResponse response;
                      absl::Status s = CallGrpc(admin.get(), &Admin::ListInDoubt,
                                                v1::ListInDoubtRequest(), &response, kCallTimeout);
                      if (!s.ok()) return s;
                      nlohmann::json branches = nlohmann::json::array();
                      for (const v1::InDoubtBranch& b : response.branches()) {
                        branches.push_back(
                            {{"txid", b.txid()},
                             {"coordinator", b.coordinator()},
                             {"prepared_unix_ms", b.prepared_unix_ms()},
                             {"age_ms", b.age_ms()},
                             {"vote", EnumName(v1::InDoubtVote_Name(b.vote()), "IN_DOUBT_VOTE_")}});
                      }
                      return nlohmann::json{
                          {"branches", std::move(branches)},
                          {"participant", response.participant()},
                          {"coordinator_address", response.coordinator_address()}};
                    },
                    "/txcoord.v1.AgentAdmin/ListInDoubt"});

  routes.push_back(
      {"POST", "/v1/admin/in-doubt/{txid}/resolve", HttpAccess::kAdmin,
       [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         std::string decision;
         std::string reason;
         if (absl::Status s = body.String("decision", &decision); !s.ok()) return s;
         if (absl::Status s = body.Text("reason", &reason); !s.ok()) return s;
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::ResolveBranchRequest request;
         if (decision == "COMMITTED") {
           request.set_decision(v1::OUTCOME_COMMITTED);
         } else if (decision == "ABORTED") {
           request.set_decision(v1::OUTCOME_ABORTED);
         } else {
           return absl::InvalidArgumentError("decision must be \"COMMITTED\" or \"ABORTED\"");
         }
         request.set_txid(req.params.at("txid"));
         request.set_reason(reason);
         v1::HeuristicDecision response;
         absl::Status s =
             CallGrpc(admin.get(), &Admin::ResolveBranch, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         return DecisionToJson(response);
       },
       "/txcoord.v1.AgentAdmin/ResolveBranch"});

  routes.push_back({"GET", "/v1/admin/heuristics", HttpAccess::kAdmin,
                    [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      if (absl::Status s = CheckQuery(req, {"mixed_only"}); !s.ok()) return s;
                      v1::ListHeuristicsRequest request;
                      if (auto it = req.query.find("mixed_only"); it != req.query.end()) {
                        if (it->second != "true" && it->second != "false") {
                          return absl::InvalidArgumentError("mixed_only must be true or false");
                        }
                        request.set_mixed_only(it->second == "true");
                      }
                      v1::ListHeuristicsResponse response;
                      absl::Status s = CallGrpc(admin.get(), &Admin::ListHeuristics, request,
                                                &response, kCallTimeout);
                      if (!s.ok()) return s;
                      nlohmann::json decisions = nlohmann::json::array();
                      for (const v1::HeuristicDecision& d : response.decisions()) {
                        decisions.push_back(DecisionToJson(d));
                      }
                      return nlohmann::json{{"decisions", std::move(decisions)}};
                    },
                    "/txcoord.v1.AgentAdmin/ListHeuristics"});

  routes.push_back({"GET", "/v1/admin/metrics", HttpAccess::kAdmin,
                    [metrics](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      if (absl::Status s = CheckQuery(req, {}); !s.ok()) return s;
                      return nlohmann::json{{"text", metrics ? metrics() : std::string()}};
                    },
                    "/txcoord.v1.AgentAdmin/Metrics"});
  return routes;
}

}  // namespace txcoord::participant
