// txctl commands answered by an agent's AgentAdmin service: in-doubt,
// resolve, heuristics. All need --agent.
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::cli {
namespace {

std::unique_ptr<v1::AgentAdmin::Stub> Stub(const Invocation& invocation) {
  return v1::AgentAdmin::NewStub(ChannelTo(invocation, invocation.agent));
}

void WriteDecision(JsonWriter& json, const v1::HeuristicDecision& d) {
  json.BeginObject();
  json.Key("txid").String(d.txid());
  json.Key("coordinator").String(d.coordinator());
  json.Key("decision").String(OutcomeName(d.decision()));
  json.Key("decided_unix_ms").Int(d.decided_unix_ms());
  json.Key("reason").String(d.reason());
  json.Key("coordinator_outcome").String(OutcomeName(d.coordinator_outcome()));
  json.Key("heuristic_mixed").Bool(d.heuristic_mixed());
  json.EndObject();
}

std::string Agreement(const v1::HeuristicDecision& d) {
  if (d.heuristic_mixed()) return "HEURISTIC_MIXED";
  if (d.coordinator_outcome() == v1::OUTCOME_UNSPECIFIED) return "unconfirmed";
  return "confirmed";
}

}  // namespace

int RunInDoubt(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("in-doubt", "--agent=HOST:PORT is required");
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::ListInDoubtResponse response;
  grpc::Status status =
      Stub(invocation)->ListInDoubt(&context, v1::ListInDoubtRequest(), &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status),
                       absl::StrCat("listing in-doubt branches at ", invocation.agent));
  }
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("participant").String(response.participant());
    json.Key("coordinator_address").String(response.coordinator_address());
    json.Key("branches").BeginArray();
    for (const v1::InDoubtBranch& b : response.branches()) {
      json.BeginObject();
      json.Key("txid").String(b.txid());
      json.Key("coordinator").String(b.coordinator());
      json.Key("prepared_unix_ms").Int(b.prepared_unix_ms());
      json.Key("age_ms").Int(b.age_ms());
      json.Key("vote").String(InDoubtVoteName(b.vote()));
      json.EndObject();
    }
    json.EndArray().EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  std::cout << "agent " << response.participant() << " at " << invocation.agent
            << " (asks coordinator " << response.coordinator_address() << ")\n";
  Table table({"TXID", "COORDINATOR", "PREPARED", "AGE", "VOTE"});
  for (const v1::InDoubtBranch& b : response.branches()) {
    table.AddRow({b.txid(), b.coordinator(), Timestamp(b.prepared_unix_ms()),
                  FormatAge(absl::Milliseconds(b.age_ms())), InDoubtVoteName(b.vote())});
  }
  std::cout << table.Render() << response.branches_size() << " in-doubt branch(es)\n";
  return kExitOk;
}

int RunResolve(const Invocation& invocation) {
  const bool commit = invocation.line.Has("commit");
  const bool abort = invocation.line.Has("abort");
  if (commit == abort) return UsageError("resolve", "give exactly one of --commit or --abort");
  if (invocation.agent.empty()) return UsageError("resolve", "--agent=HOST:PORT is required");
  v1::ResolveBranchRequest request;
  request.set_txid(invocation.args[0]);
  request.set_decision(commit ? v1::OUTCOME_COMMITTED : v1::OUTCOME_ABORTED);
  request.set_reason(invocation.line.Get("reason", "forced with txctl resolve"));
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::HeuristicDecision response;
  grpc::Status status = Stub(invocation)->ResolveBranch(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status),
                       absl::StrCat("resolve ", request.txid(), " at ", invocation.agent));
  }
  if (invocation.json) {
    JsonWriter json;
    WriteDecision(json, response);
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  std::cout << "branch " << response.txid() << " at " << invocation.agent << " heuristically "
            << (commit ? "COMMITTED" : "ABORTED") << " (recorded at "
            << Timestamp(response.decided_unix_ms()) << "; reason: " << response.reason() << ")\n"
            << "The agent keeps asking coordinator " << response.coordinator()
            << " for its outcome; a contradiction shows as HEURISTIC_MIXED in\n"
            << "`txctl heuristics --agent=" << invocation.agent << "`.\n";
  return kExitOk;
}

int RunHeuristics(const Invocation& invocation) {
  if (invocation.agent.empty()) return UsageError("heuristics", "--agent=HOST:PORT is required");
  v1::ListHeuristicsRequest request;
  request.set_mixed_only(invocation.line.Has("mixed-only"));
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::ListHeuristicsResponse response;
  grpc::Status status = Stub(invocation)->ListHeuristics(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status),
                       absl::StrCat("listing heuristic decisions at ", invocation.agent));
  }
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject().Key("decisions").BeginArray();
    for (const v1::HeuristicDecision& d : response.decisions()) WriteDecision(json, d);
    json.EndArray().EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  const absl::Time now = absl::Now();
  Table table(
      {"TXID", "COORDINATOR", "DECISION", "DECIDED", "COORDINATOR SAID", "AGREEMENT", "REASON"});
  int mixed = 0;
  for (const v1::HeuristicDecision& d : response.decisions()) {
    mixed += d.heuristic_mixed() ? 1 : 0;
    table.AddRow({d.txid(), d.coordinator(), OutcomeName(d.decision()),
                  Ago(d.decided_unix_ms(), now) + " ago", OutcomeName(d.coordinator_outcome()),
                  Agreement(d), OrDash(Truncate(d.reason(), 60))});
  }
  std::cout << table.Render() << response.decisions_size() << " heuristic decision(s), " << mixed
            << " HEURISTIC_MIXED\n";
  return kExitOk;
}

}  // namespace txcoord::cli
