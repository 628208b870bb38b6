// txctl commands answered by the coordinator's CoordinatorAdmin service:
// list, show, retry, abort, mark-done.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::cli {
namespace {

constexpr size_t kErrorColumnWidth = 70;

std::unique_ptr<v1::CoordinatorAdmin::Stub> Stub(const Invocation& invocation) {
  return v1::CoordinatorAdmin::NewStub(ChannelTo(invocation, invocation.coordinator));
}

void WriteTransaction(JsonWriter& json, const v1::Transaction& tx, absl::Time now) {
  json.BeginObject();
  json.Key("txid").String(tx.txid());
  json.Key("state").String(StateName(tx.state()));
  json.Key("begin_unix_ms").Int(tx.begin_unix_ms());
  // Since Begin, or since recovery for a transaction recovered from the log.
  const int64_t since = tx.begin_unix_ms() != 0 ? tx.begin_unix_ms() : tx.decided_unix_ms();
  json.Key("age_ms").Int(since == 0 ? 0
                                    : absl::ToInt64Milliseconds(now - absl::FromUnixMillis(since)));
  json.Key("deadline_unix_ms").Int(tx.deadline_unix_ms());
  json.Key("decided_unix_ms").Int(tx.decided_unix_ms());
  json.Key("reason").String(tx.reason());
  bool mixed = false;
  json.Key("branches").BeginArray();
  for (const v1::Branch& b : tx.branches()) {
    mixed |= b.heuristic_mixed();
    json.BeginObject();
    json.Key("participant").String(b.participant());
    json.Key("endpoint").String(b.endpoint());
    json.Key("vote").String(VoteName(b.vote()));
    json.Key("acknowledged").Bool(b.acknowledged());
    json.Key("heuristic").Bool(b.heuristic());
    json.Key("heuristic_mixed").Bool(b.heuristic_mixed());
    json.Key("awaited").Bool(b.awaited());
    json.Key("phase2_attempts").Uint(b.phase2_attempts());
    json.Key("last_attempt_unix_ms").Int(b.last_attempt_unix_ms());
    json.Key("last_error").String(b.last_error());
    json.EndObject();
  }
  json.EndArray();
  json.Key("heuristic_mixed").Bool(mixed);
  json.EndObject();
}

// Branches that voted YES and have not acknowledged phase 2.
std::vector<const v1::Branch*> Waiting(const v1::Transaction& tx) {
  std::vector<const v1::Branch*> waiting;
  for (const v1::Branch& b : tx.branches()) {
    if (b.vote() == v1::VOTE_YES && !b.acknowledged()) waiting.push_back(&b);
  }
  return waiting;
}

// The most telling problem of a transaction, for one table cell.
std::string Problem(const v1::Transaction& tx) {
  for (const v1::Branch& b : tx.branches()) {
    if (b.heuristic_mixed()) return absl::StrCat("HEURISTIC_MIXED at ", b.participant());
  }
  for (const v1::Branch& b : tx.branches()) {
    if (!b.acknowledged() && !b.last_error().empty()) {
      return absl::StrCat(b.participant(), ": ", b.last_error());
    }
  }
  for (const v1::Branch& b : tx.branches()) {
    if (b.awaited()) return absl::StrCat("awaiting ", b.participant(), "'s Enlist");
  }
  return tx.reason();
}

std::string Describe(const v1::Transaction& tx, absl::Time now) {
  std::string out;
  absl::StrAppend(&out, "transaction  ", tx.txid(), "\n");
  absl::StrAppend(&out, "state        ", StateName(tx.state()), "\n");
  absl::StrAppend(&out, "begun        ",
                  tx.begin_unix_ms() == 0 ? "- (recovered from the log, or finished)"
                                          : absl::StrCat(Timestamp(tx.begin_unix_ms()), " (",
                                                         Ago(tx.begin_unix_ms(), now), " ago)"),
                  "\n");
  if (tx.decided_unix_ms() != 0) {
    absl::StrAppend(&out, "committed    ", Timestamp(tx.decided_unix_ms()), " (",
                    Ago(tx.decided_unix_ms(), now), " ago: COMMIT durable in the log)\n");
  }
  if (tx.deadline_unix_ms() != 0) {
    absl::StrAppend(&out, "deadline     ", Timestamp(tx.deadline_unix_ms()), "\n");
  }
  if (!tx.reason().empty()) absl::StrAppend(&out, "reason       ", tx.reason(), "\n");
  Table table({"PARTICIPANT", "ENDPOINT", "VOTE", "ACKED", "ATTEMPTS", "LAST ATTEMPT", "NOTE"});
  std::vector<std::string> errors;
  for (const v1::Branch& b : tx.branches()) {
    std::string note = b.heuristic_mixed() ? "HEURISTIC_MIXED"
                       : b.heuristic()     ? "heuristic (marked done by an operator)"
                       : b.awaited()       ? "awaited: named in the Commit, not enlisted yet"
                                           : "";
    table.AddRow({b.participant(), OrDash(b.endpoint()), VoteName(b.vote()),
                  b.acknowledged() ? "yes" : "no", absl::StrCat(b.phase2_attempts()),
                  b.last_attempt_unix_ms() == 0 ? "-" : Ago(b.last_attempt_unix_ms(), now) + " ago",
                  OrDash(note)});
    if (!b.last_error().empty()) {
      errors.push_back(absl::StrCat("  ", b.participant(), ": ", b.last_error()));
    }
  }
  absl::StrAppend(&out, "\n", table.Render());
  if (!errors.empty()) absl::StrAppend(&out, "\nlast errors:\n", absl::StrJoin(errors, "\n"), "\n");

  // What to do about it: the runbook's first step, where it is needed.
  std::vector<std::string> retrying;
  for (const v1::Branch* b : Waiting(tx)) {
    if (b->heuristic_mixed()) {
      absl::StrAppend(&out, "\nHEURISTIC_MIXED at ", b->participant(),
                      ": an operator forced this branch the other way at its agent. Repair its\n"
                      "data by hand, then: txctl mark-done ",
                      tx.txid(), " ", b->participant(), "\n");
    } else {
      retrying.push_back(b->participant());
    }
  }
  if (tx.state() == v1::TX_STATE_COMMITTING && !retrying.empty()) {
    absl::StrAppend(&out, "\nphase 2 is retrying ", absl::StrJoin(retrying, ", "),
                    ": the transaction completes by itself once they answer.\n"
                    "`txctl retry ",
                    tx.txid(), "` retries now (after fixing the agent or network).\n");
  } else if (tx.state() == v1::TX_STATE_ACTIVE || tx.state() == v1::TX_STATE_PREPARING) {
    std::vector<std::string> awaited;
    for (const v1::Branch& b : tx.branches()) {
      if (b.awaited()) awaited.push_back(b.participant());
    }
    if (!awaited.empty()) {
      absl::StrAppend(&out, "\nawaiting the Enlist of ", absl::StrJoin(awaited, ", "),
                      ": the client's Commit named these branches before their agents enlisted\n"
                      "them. Without it by the prepare timeout the transaction aborts; check\n"
                      "that each agent reaches this coordinator: its log warns of each failed\n"
                      "enlistment (\"enlisting the branch ... failed\", or \"the vote of the\n"
                      "prepared branch ...\" for an early prepare).\n");
    }
    absl::StrAppend(&out,
                    "\nundecided: it commits or aborts by itself, at the latest at its deadline.\n"
                    "`txctl abort ",
                    tx.txid(), "` aborts it now.\n");
  }
  return out;
}

int PrintTransaction(const Invocation& invocation, const v1::Transaction& tx,
                     const std::string& message) {
  const absl::Time now = absl::Now();
  if (invocation.json) {
    JsonWriter json;
    if (message.empty()) {
      WriteTransaction(json, tx, now);
    } else {
      json.BeginObject().Key("message").String(message).Key("transaction");
      WriteTransaction(json, tx, now);
      json.EndObject();
    }
    std::cout << json.str() << "\n";
  } else {
    if (!message.empty()) std::cout << message << "\n\n";
    std::cout << Describe(tx, now);
  }
  return kExitOk;
}

absl::Status ParseStates(const std::string& text, v1::ListTransactionsRequest* request) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(part));
    v1::TxState state;
    if (!v1::TxState_Parse("TX_STATE_" + name, &state) || state == v1::TX_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("--state: \"", part,
                       "\" is not a state (active, preparing, committing, committed, aborted)"));
    }
    request->add_states(state);
  }
  return absl::OkStatus();
}

absl::Status BuildListRequest(const CommandLine& line, v1::ListTransactionsRequest* request) {
  if (line.Has("state")) {
    if (absl::Status s = ParseStates(line.Get("state", ""), request); !s.ok()) return s;
  }
  if (line.Has("min-age")) {
    absl::Duration age;
    if (!absl::ParseDuration(line.Get("min-age", ""), &age) || age < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("--min-age is not a duration (e.g. 30s, 5m, 2h)");
    }
    request->set_min_age_ms(absl::ToInt64Milliseconds(age));
  }
  request->set_participant(line.Get("participant", ""));
  if (line.Has("page-size")) {
    uint32_t size;
    if (!absl::SimpleAtoi(line.Get("page-size", ""), &size) || size == 0 || size > 1000) {
      return absl::InvalidArgumentError("--page-size must be 1 to 1000");
    }
    request->set_page_size(size);
  }
  request->set_page_token(line.Get("page-token", ""));
  request->set_include_finished(line.Has("finished"));
  return absl::OkStatus();
}

}  // namespace

int RunList(const Invocation& invocation) {
  v1::ListTransactionsRequest request;
  if (absl::Status s = BuildListRequest(invocation.line, &request); !s.ok()) {
    return UsageError("list", std::string(s.message()));
  }
  auto stub = Stub(invocation);
  std::vector<v1::Transaction> transactions;
  std::string next_token;
  do {
    grpc::ClientContext context;
    PrepareContext(invocation, &context);
    v1::ListTransactionsResponse response;
    grpc::Status status = stub->ListTransactions(&context, request, &response);
    if (!status.ok()) {
      return ReportError(invocation, FromGrpcStatus(status),
                         absl::StrCat("listing transactions at ", invocation.coordinator));
    }
    for (v1::Transaction& tx : *response.mutable_transactions())
      transactions.push_back(std::move(tx));
    next_token = response.next_page_token();
    request.set_page_token(next_token);
  } while (invocation.line.Has("all") && !next_token.empty());

  const absl::Time now = absl::Now();
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject().Key("transactions").BeginArray();
    for (const v1::Transaction& tx : transactions) WriteTransaction(json, tx, now);
    json.EndArray().Key("next_page_token").String(next_token).EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  Table table({"TXID", "STATE", "AGE", "BRANCHES", "WAITING", "ATTEMPTS", "PROBLEM"});
  for (const v1::Transaction& tx : transactions) {
    uint32_t attempts = 0;
    for (const v1::Branch& b : tx.branches()) attempts += b.phase2_attempts();
    const int64_t since = tx.begin_unix_ms() != 0 ? tx.begin_unix_ms() : tx.decided_unix_ms();
    table.AddRow({tx.txid(), StateName(tx.state()), Ago(since, now),
                  absl::StrCat(tx.branches_size()), absl::StrCat(Waiting(tx).size()),
                  absl::StrCat(attempts), OrDash(Truncate(Problem(tx), kErrorColumnWidth))});
  }
  std::cout << table.Render() << transactions.size() << " transaction(s)";
  if (!next_token.empty()) std::cout << "; more: --page-token=" << next_token << " (or --all)";
  std::cout << "\n";
  return kExitOk;
}

int RunShow(const Invocation& invocation) {
  v1::GetTransactionRequest request;
  request.set_txid(invocation.args[0]);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::Transaction response;
  grpc::Status status = Stub(invocation)->GetTransaction(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status), absl::StrCat("show ", request.txid()));
  }
  return PrintTransaction(invocation, response, "");
}

int RunRetry(const Invocation& invocation) {
  v1::RetryPhase2Request request;
  request.set_txid(invocation.args[0]);
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::AdminActionResponse response;
  grpc::Status status = Stub(invocation)->RetryPhase2(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status), absl::StrCat("retry ", request.txid()));
  }
  return PrintTransaction(invocation, response.transaction(), response.message());
}

int RunAbort(const Invocation& invocation) {
  v1::ForceAbortRequest request;
  request.set_txid(invocation.args[0]);
  request.set_reason(invocation.line.Get("reason", ""));
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::AdminActionResponse response;
  grpc::Status status = Stub(invocation)->ForceAbort(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status), absl::StrCat("abort ", request.txid()));
  }
  return PrintTransaction(invocation, response.transaction(), response.message());
}

int RunMarkDone(const Invocation& invocation) {
  v1::MarkBranchDoneRequest request;
  request.set_txid(invocation.args[0]);
  request.set_participant(invocation.args[1]);
  request.set_note(invocation.line.Get("note", ""));
  grpc::ClientContext context;
  PrepareContext(invocation, &context);
  v1::AdminActionResponse response;
  grpc::Status status = Stub(invocation)->MarkBranchDone(&context, request, &response);
  if (!status.ok()) {
    return ReportError(invocation, FromGrpcStatus(status),
                       absl::StrCat("mark-done ", request.txid(), " ", request.participant()));
  }
  return PrintTransaction(invocation, response.transaction(), response.message());
}

}  // namespace txcoord::cli
