#include "coordinator/http_api.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/txid.h"
#include "rpc/http_grpc.h"
#include "txcoord/v1/admin.grpc.pb.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {
namespace {

// A Commit waits for every vote and a log sync: as long as gRPC's default.
constexpr absl::Duration kCommitTimeout = absl::Seconds(60);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

nlohmann::json ActionToJson(const v1::AdminActionResponse& r) {
  return {{"transaction", TransactionToJson(r.transaction())}, {"message", r.message()}};
}

// A Commit or Abort body: none, {}, or {"branches": [{"participant": "orders",
// "branch_token": "1234"}, ...]} with each token a decimal string, as
// /v1/execute reports it, and with a signed vote also its "endpoint" and
// "vote_proof" (base64), as /v1/execute reports them (the coordinator
// checks the rest).
absl::Status NamedBranchesFromJson(const nlohmann::json& json,
                                   google::protobuf::RepeatedPtrField<v1::NamedBranch>* out) {
  JsonFields body(json);
  const nlohmann::json* branches = body.Get("branches");
  if (absl::Status s = body.Finish(); !s.ok()) return s;
  if (branches == nullptr) return absl::OkStatus();
  if (!branches->is_array()) return absl::InvalidArgumentError("branches must be an array");
  for (size_t i = 0; i < branches->size(); ++i) {
    const std::string where = absl::StrCat("branches[", i, "]");
    if (!(*branches)[i].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
    }
    JsonFields branch((*branches)[i]);
    std::string participant, token, endpoint, proof;
    if (absl::Status s = branch.Text("participant", &participant); !s.ok()) return s;
    if (absl::Status s = branch.Text("branch_token", &token); !s.ok()) return s;
    // null, as /v1/execute reports a vote sent by Enlist, is as absent.
    if (const nlohmann::json* e = branch.Get("endpoint"); e != nullptr && !e->is_null()) {
      if (!e->is_string()) return absl::InvalidArgumentError(where + ".endpoint must be a string");
      endpoint = e->get<std::string>();
    }
    if (const nlohmann::json* p = branch.Get("vote_proof"); p != nullptr && !p->is_null()) {
      if (!p->is_string() || !absl::Base64Unescape(p->get<std::string>(), &proof)) {
        return absl::InvalidArgumentError(where +
                                          ".vote_proof must be base64, as /v1/execute reports it");
      }
    }
    if (absl::Status s = branch.Finish(); !s.ok()) return s;
    uint64_t value = 0;
    if (!absl::SimpleAtoi(token, &value) || value == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".branch_token must be a nonzero decimal string, as /v1/execute reports it"));
    }
    v1::NamedBranch* named = out->Add();
    named->set_participant(participant);
    named->set_branch_token(value);
    named->set_endpoint(endpoint);
    named->set_vote_proof(proof);
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<HttpRoute> CoordinatorHttpRoutes(std::shared_ptr<grpc::Channel> channel,
                                             std::function<std::string()> metrics,
                                             TxidOwnerFn owner) {
  auto client = std::shared_ptr<v1::Coordinator::Stub>(v1::Coordinator::NewStub(channel));
  auto admin = std::shared_ptr<v1::CoordinatorAdmin::Stub>(v1::CoordinatorAdmin::NewStub(channel));
  using Stub = v1::Coordinator::Stub;
  using Admin = v1::CoordinatorAdmin::Stub;
  std::vector<HttpRoute> routes;

  routes.push_back(
      {"POST", "/v1/transactions", HttpAccess::kData,
       [client](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         uint32_t timeout_ms = 0;
         if (absl::Status s = body.Uint32("timeout_ms", &timeout_ms); !s.ok()) return s;
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::BeginRequest request;
         request.set_timeout_ms(timeout_ms);
         v1::BeginResponse response;
         absl::Status s = CallGrpc(client.get(), &Stub::Begin, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         return nlohmann::json{{"txid", response.txid()},
                               {"deadline_unix_ms", response.deadline_unix_ms()},
                               {"checks_named_branches", response.checks_named_branches()}};
       },
       "/txcoord.v1.Coordinator/Begin"});

  routes.push_back(
      {"POST", "/v1/txid-reservations", HttpAccess::kData,
       [client](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         uint32_t count = 0;
         uint32_t timeout_ms = 0;
         if (absl::Status s = body.Uint32("count", &count); !s.ok()) return s;
         if (absl::Status s = body.Uint32("timeout_ms", &timeout_ms); !s.ok()) return s;
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::ReserveTxidsRequest request;
         request.set_count(count);
         request.set_timeout_ms(timeout_ms);
         v1::ReserveTxidsResponse response;
         absl::Status s =
             CallGrpc(client.get(), &Stub::ReserveTxids, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         nlohmann::json txids = nlohmann::json::array();
         for (uint32_t i = 0; i < response.count(); ++i) {
           txids.push_back(Txid{response.cluster(), response.epoch(), response.first_sequence() + i}
                               .ToString());
         }
         return nlohmann::json{{"txids", std::move(txids)},
                               {"valid_for_ms", response.valid_for_ms()},
                               {"checks_named_branches", response.checks_named_branches()}};
       },
       "/txcoord.v1.Coordinator/ReserveTxids"});

  routes.push_back(
      {"POST", "/v1/transactions/{txid}/commit", HttpAccess::kData,
       [client](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         v1::CommitRequest request;
         if (absl::Status s = NamedBranchesFromJson(req.body, request.mutable_branches());
             !s.ok()) {
           return s;
         }
         request.set_txid(req.params.at("txid"));
         v1::CommitResponse response;
         absl::Status s = CallGrpc(client.get(), &Stub::Commit, request, &response, kCommitTimeout);
         if (!s.ok()) return s;
         return nlohmann::json{
             {"outcome", EnumName(v1::Outcome_Name(response.outcome()), "OUTCOME_")},
             {"reason", response.reason()},
             {"coordinator_epoch", response.coordinator_epoch()}};
       },
       "/txcoord.v1.Coordinator/Commit"});

  routes.push_back(
      {"POST", "/v1/transactions/{txid}/abort", HttpAccess::kData,
       [client](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         v1::AbortRequest request;
         if (absl::Status s = NamedBranchesFromJson(req.body, request.mutable_branches());
             !s.ok()) {
           return s;
         }
         request.set_txid(req.params.at("txid"));
         v1::AbortResponse response;
         absl::Status s = CallGrpc(client.get(), &Stub::Abort, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         return nlohmann::json{{"aborted", true},
                               {"coordinator_epoch", response.coordinator_epoch()}};
       },
       "/txcoord.v1.Coordinator/Abort"});

  routes.push_back({"GET", "/v1/transactions/{txid}", HttpAccess::kData,
                    [client](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      v1::GetTransactionRequest request;
                      request.set_txid(req.params.at("txid"));
                      v1::Transaction response;
                      absl::Status s = CallGrpc(client.get(), &Stub::GetTransaction, request,
                                                &response, kCallTimeout);
                      if (!s.ok()) return s;
                      return TransactionToJson(response);
                    },
                    "/txcoord.v1.Coordinator/GetTransaction"});

  // --- Operators (txctl's calls; the console) ---------------------------------
  routes.push_back(
      {"GET", "/v1/admin/transactions", HttpAccess::kAdmin,
       [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         v1::ListTransactionsRequest request;
         for (const auto& [key, value] : req.query) {
           if (key == "state") {
             for (absl::string_view name : absl::StrSplit(value, ',', absl::SkipEmpty())) {
               v1::TxState state;
               if (!v1::TxState_Parse(absl::StrCat("TX_STATE_", name), &state) ||
                   state == v1::TX_STATE_UNSPECIFIED) {
                 return absl::InvalidArgumentError(absl::StrCat(
                     "state \"", name,
                     "\" is not one of ACTIVE, PREPARING, COMMITTING, COMMITTED, ABORTED"));
               }
               request.add_states(state);
             }
           } else if (key == "min_age_ms" || key == "page_size") {
             uint64_t n = 0;
             if (!absl::SimpleAtoi(value, &n) || (key == "page_size" && n > UINT32_MAX)) {
               return absl::InvalidArgumentError(
                   absl::StrCat(key, " must be a non-negative integer"));
             }
             if (key == "min_age_ms") request.set_min_age_ms(n);
             if (key == "page_size") request.set_page_size(static_cast<uint32_t>(n));
           } else if (key == "participant") {
             request.set_participant(value);
           } else if (key == "page_token") {
             request.set_page_token(value);
           } else if (key == "include_finished") {
             if (value != "true" && value != "false") {
               return absl::InvalidArgumentError("include_finished must be true or false");
             }
             request.set_include_finished(value == "true");
           } else {
             return absl::InvalidArgumentError(absl::StrCat(
                 "unknown query parameter \"", key,
                 "\" (state, min_age_ms, participant, page_size, page_token, include_finished)"));
           }
         }
         v1::ListTransactionsResponse response;
         absl::Status s =
             CallGrpc(admin.get(), &Admin::ListTransactions, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         nlohmann::json list = nlohmann::json::array();
         for (const v1::Transaction& tx : response.transactions()) {
           list.push_back(TransactionToJson(tx));
         }
         return nlohmann::json{{"transactions", list},
                               {"next_page_token", response.next_page_token()}};
       },
       "/txcoord.v1.CoordinatorAdmin/ListTransactions"});

  routes.push_back({"GET", "/v1/admin/transactions/{txid}", HttpAccess::kAdmin,
                    [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      v1::GetTransactionRequest request;
                      request.set_txid(req.params.at("txid"));
                      v1::Transaction response;
                      absl::Status s = CallGrpc(admin.get(), &Admin::GetTransaction, request,
                                                &response, kCallTimeout);
                      if (!s.ok()) return s;
                      return TransactionToJson(response);
                    },
                    "/txcoord.v1.CoordinatorAdmin/GetTransaction"});

  routes.push_back({"POST", "/v1/admin/transactions/{txid}/retry", HttpAccess::kAdmin,
                    [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      if (absl::Status s = JsonFields(req.body).Finish(); !s.ok()) return s;
                      v1::RetryPhase2Request request;
                      request.set_txid(req.params.at("txid"));
                      v1::AdminActionResponse response;
                      absl::Status s = CallGrpc(admin.get(), &Admin::RetryPhase2, request,
                                                &response, kCallTimeout);
                      if (!s.ok()) return s;
                      return ActionToJson(response);
                    },
                    "/txcoord.v1.CoordinatorAdmin/RetryPhase2"});

  routes.push_back({"POST", "/v1/admin/transactions/{txid}/abort", HttpAccess::kAdmin,
                    [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
                      JsonFields body(req.body);
                      v1::ForceAbortRequest request;
                      std::string reason;
                      if (absl::Status s = body.Text("reason", &reason); !s.ok()) return s;
                      if (absl::Status s = body.Finish(); !s.ok()) return s;
                      request.set_txid(req.params.at("txid"));
                      request.set_reason(reason);
                      v1::AdminActionResponse response;
                      absl::Status s = CallGrpc(admin.get(), &Admin::ForceAbort, request, &response,
                                                kCallTimeout);
                      if (!s.ok()) return s;
                      return ActionToJson(response);
                    },
                    "/txcoord.v1.CoordinatorAdmin/ForceAbort"});

  routes.push_back(
      {"POST", "/v1/admin/transactions/{txid}/branches/{participant}/mark-done", HttpAccess::kAdmin,
       [admin](const HttpRequest& req) -> absl::StatusOr<nlohmann::json> {
         JsonFields body(req.body);
         std::string note;
         if (absl::Status s = body.Text("note", &note); !s.ok()) return s;
         if (absl::Status s = body.Finish(); !s.ok()) return s;
         v1::MarkBranchDoneRequest request;
         request.set_txid(req.params.at("txid"));
         request.set_participant(req.params.at("participant"));
         request.set_note(note);
         v1::AdminActionResponse response;
         absl::Status s =
             CallGrpc(admin.get(), &Admin::MarkBranchDone, request, &response, kCallTimeout);
         if (!s.ok()) return s;
         return ActionToJson(response);
       },
       "/txcoord.v1.CoordinatorAdmin/MarkBranchDone"});

  routes.push_back({"GET", "/v1/admin/metrics", HttpAccess::kAdmin,
                    [metrics](const HttpRequest&) -> absl::StatusOr<nlohmann::json> {
                      return nlohmann::json{{"text", metrics ? metrics() : std::string()}};
                    },
                    "/txcoord.v1.CoordinatorAdmin/Metrics"});
  if (owner) {
    for (HttpRoute& route : routes) {
      if (route.pattern.find("{txid}") == std::string::npos) continue;
      route.redirect = [owner](const HttpRequest& request) {
        return owner(request.params.at("txid"));
      };
    }
  }
  return routes;
}

}  // namespace txcoord::coordinator
