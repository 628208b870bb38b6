#include "agent/agent_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/failpoint.h"
#include "common/txid.h"
#include "common/utf8.h"
#include "rpc/access_policy.h"
#include "rpc/frame.h"
#include "rpc/frame_handler.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {
namespace {

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// Every call about a branch names a well-formed txid.
grpc::Status CheckTxid(const std::string& txid) { return ToGrpcStatus(ParseTxid(txid).status()); }

// The client's deadline, if it set one: SQL still running past it would hold
// the agent's connection for an answer nobody waits for.
absl::Time DeadlineOf(const grpc::ServerContext* context) {
  if (context == nullptr) return absl::InfiniteFuture();
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

constexpr char kUnknownBranchReason[] =
    "branch unknown or replaced (never written, rolled back, or lost in a restart)";

v1::Vote ToProto(Vote vote) {
  switch (vote) {
    case Vote::kYes:
      return v1::VOTE_YES;
    case Vote::kNo:
      return v1::VOTE_NO;
    case Vote::kReadOnly:
      return v1::VOTE_READ_ONLY;
  }
  return v1::VOTE_UNSPECIFIED;
}

// The wire's messages as the participant takes them; the participant
// checks them (and names the field of any that breaks a rule).
std::vector<OutboxMessage> MessagesFromProto(
    const google::protobuf::RepeatedPtrField<v1::OutboxMessage>& in) {
  std::vector<OutboxMessage> messages;
  messages.reserve(in.size());
  for (const v1::OutboxMessage& m : in) {
    OutboxMessage& out = messages.emplace_back();
    out.topic = m.topic();
    out.key = m.key();
    out.payload = m.payload();
    for (const v1::Header& h : m.headers()) out.headers.emplace_back(h.name(), h.value());
  }
  return messages;
}

}  // namespace

grpc::Status ParticipantService::Prepare(grpc::ServerContext* context,
                                         const v1::PrepareRequest* request,
                                         v1::PrepareResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.Participant/Prepare");
      !admitted.ok()) {
    return admitted;
  }
  return ServePrepare(*request, response);
}

grpc::Status ParticipantService::ServePrepare(const v1::PrepareRequest& request,
                                              v1::PrepareResponse* response) {
  if (grpc::Status s = CheckTxid(request.txid()); !s.ok()) return s;
  absl::StatusOr<Vote> vote = participant_->Prepare(request.txid(), request.branch_token());
  if (!vote.ok()) return ToGrpcStatus(vote.status());
  if (*vote == Vote::kYes) TXCOORD_FAILPOINT("before-prepare-reply");
  response->set_vote(ToProto(*vote));
  if (*vote == Vote::kNo) response->set_reason(kUnknownBranchReason);
  return grpc::Status::OK;
}

grpc::Status ParticipantService::Commit(grpc::ServerContext* context,
                                        const v1::BranchRequest* request,
                                        v1::BranchResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.Participant/Commit");
      !admitted.ok()) {
    return admitted;
  }
  return ServeCommit(*request, response);
}

grpc::Status ParticipantService::ServeCommit(const v1::BranchRequest& request,
                                             v1::BranchResponse* response) {
  if (grpc::Status s = CheckTxid(request.txid()); !s.ok()) return s;
  // Crash tests: the coordinator has decided COMMIT and this branch has not
  // applied it yet (operators' tests use it to leave a COMMITTING
  // transaction with a dead branch).
  TXCOORD_FAILPOINT("before-commit-apply");
  absl::Status committed = participant_->Commit(request.txid());
  if (committed.ok()) TXCOORD_FAILPOINT("after-commit-applied");
  return ToGrpcStatus(committed);
}

grpc::Status ParticipantService::Abort(grpc::ServerContext* context,
                                       const v1::BranchRequest* request,
                                       v1::BranchResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.Participant/Abort");
      !admitted.ok()) {
    return admitted;
  }
  return ServeAbort(*request, response);
}

grpc::Status ParticipantService::ServeAbort(const v1::BranchRequest& request,
                                            v1::BranchResponse* response) {
  if (grpc::Status s = CheckTxid(request.txid()); !s.ok()) return s;
  return ToGrpcStatus(participant_->Abort(request.txid()));
}

grpc::Status ParticipantService::Batch(grpc::ServerContext* context,
                                       const v1::BatchRequest* request,
                                       v1::BatchResponse* response) {
  if (grpc::Status admitted = AdmitCall(policy_, *context, "/txcoord.v1.Participant/Batch");
      !admitted.ok()) {
    return admitted;
  }
  return ServeBatch(*request, response);
}

grpc::Status ParticipantService::ServeBatch(const v1::BatchRequest& request,
                                            v1::BatchResponse* response) {
  if (grpc::Status s = CheckBatchSize(request.entries_size(), "entries"); !s.ok()) return s;
  // A malformed entry is answered as its own call would be; the others run.
  std::vector<grpc::Status> refused(request.entries_size());
  std::vector<BatchEntry> entries;
  entries.reserve(request.entries_size());
  bool commits = false;
  for (int i = 0; i < request.entries_size(); ++i) {
    const v1::BatchRequest::Entry& in = request.entries(i);
    BatchEntry entry{BranchOp::kPrepare, in.txid(), in.branch_token()};
    switch (in.kind()) {
      case v1::BatchRequest::KIND_PREPARE:
        entry.op = BranchOp::kPrepare;
        break;
      case v1::BatchRequest::KIND_COMMIT:
        entry.op = BranchOp::kCommit;
        break;
      case v1::BatchRequest::KIND_ABORT:
        entry.op = BranchOp::kAbort;
        break;
      default:
        refused[i] =
            Invalid(absl::StrCat("entries[", i, "].kind must be PREPARE, COMMIT or ABORT"));
        continue;
    }
    if (grpc::Status s = CheckTxid(in.txid()); !s.ok()) {
      refused[i] = s;
      continue;
    }
    commits = commits || entry.op == BranchOp::kCommit;
    entries.push_back(std::move(entry));
  }
  // The crash points of the single calls, once per batch.
  if (commits) TXCOORD_FAILPOINT("before-commit-apply");
  const std::vector<BatchAnswer> answers = participant_->RunBatch(entries);
  bool committed = false, voted_yes = false;
  size_t ran = 0;  // entries and answers are the request's entries that were not refused
  for (int i = 0; i < request.entries_size(); ++i) {
    v1::BatchResponse::Answer* out = response->add_answers();
    if (!refused[i].ok()) {
      SetAnswerStatus(FromGrpcStatus(refused[i]), out);
      continue;
    }
    const BranchOp op = entries[ran].op;
    const BatchAnswer& answer = answers[ran++];
    if (!answer.status.ok()) {
      SetAnswerStatus(answer.status, out);
    } else if (op == BranchOp::kPrepare) {
      out->set_vote(ToProto(answer.vote));
      if (answer.vote == Vote::kNo) out->set_reason(kUnknownBranchReason);
      voted_yes = voted_yes || answer.vote == Vote::kYes;
    } else {
      committed = committed || op == BranchOp::kCommit;
    }
  }
  if (committed) TXCOORD_FAILPOINT("after-commit-applied");
  if (voted_yes) TXCOORD_FAILPOINT("before-prepare-reply");
  return grpc::Status::OK;
}

grpc::Status ParticipantService::CommitOnePhase(grpc::ServerContext* context,
                                                const v1::BranchRequest* request,
                                                v1::CommitOnePhaseResponse* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.Participant/CommitOnePhase");
      !admitted.ok()) {
    return admitted;
  }
  return ServeCommitOnePhase(*request, response);
}

grpc::Status ParticipantService::ServeCommitOnePhase(const v1::BranchRequest& request,
                                                     v1::CommitOnePhaseResponse* response) {
  if (grpc::Status s = CheckTxid(request.txid()); !s.ok()) return s;
  absl::StatusOr<Outcome> outcome =
      participant_->CommitOnePhase(request.txid(), request.branch_token());
  if (!outcome.ok()) return ToGrpcStatus(outcome.status());
  response->set_outcome(*outcome == Outcome::kCommitted ? v1::OUTCOME_COMMITTED
                                                        : v1::OUTCOME_ABORTED);
  return grpc::Status::OK;
}

namespace {

// One of ParticipantService's Serve methods on the framed port.
template <typename Request, typename Response>
std::pair<FrameMethod, FrameServer::Handler> FramedCall(
    FrameMethod method, const char* grpc_method, const AccessPolicy* policy,
    InflightTracker* inflight, ParticipantService* service,
    grpc::Status (ParticipantService::*serve)(const Request&, Response*)) {
  return {method, UnaryFrameHandler<Request, Response>(
                      method, grpc_method, policy, inflight,
                      [service, serve](const Request& request, absl::Time, Response* response) {
                        return FromGrpcStatus((service->*serve)(request, response));
                      })};
}

}  // namespace

std::vector<std::pair<FrameMethod, FrameServer::Handler>> ParticipantService::FramedCalls(
    const AccessPolicy* policy, InflightTracker* inflight) {
  return {
      FramedCall(FrameMethod::kParticipantPrepare, "/txcoord.v1.Participant/Prepare", policy,
                 inflight, this, &ParticipantService::ServePrepare),
      FramedCall(FrameMethod::kParticipantCommit, "/txcoord.v1.Participant/Commit", policy,
                 inflight, this, &ParticipantService::ServeCommit),
      FramedCall(FrameMethod::kParticipantAbort, "/txcoord.v1.Participant/Abort", policy, inflight,
                 this, &ParticipantService::ServeAbort),
      FramedCall(FrameMethod::kParticipantCommitOnePhase, "/txcoord.v1.Participant/CommitOnePhase",
                 policy, inflight, this, &ParticipantService::ServeCommitOnePhase),
      FramedCall(FrameMethod::kParticipantBatch, "/txcoord.v1.Participant/Batch", policy, inflight,
                 this, &ParticipantService::ServeBatch),
  };
}

grpc::Status AgentService::Execute(grpc::ServerContext* context, const v1::ExecuteRequest* request,
                                   v1::ExecuteResponse* response) {
  return ServeExecute(*request, DeadlineOf(context), response);
}

FrameServer::Handler AgentService::FramedExecute(const AccessPolicy* policy,
                                                 InflightTracker* inflight) {
  return UnaryFrameHandler<v1::ExecuteRequest, v1::ExecuteResponse>(
      FrameMethod::kAgentExecute, "/txcoord.v1.Agent/Execute", policy, inflight,
      [this](const v1::ExecuteRequest& request, absl::Time deadline,
             v1::ExecuteResponse* response) {
        return FromGrpcStatus(ServeExecute(request, deadline, response));
      });
}

grpc::Status AgentService::ServeExecute(const v1::ExecuteRequest& request, absl::Time deadline,
                                        v1::ExecuteResponse* response) {
  if (request.statements_size() == 0 && request.messages_size() == 0) {
    return Invalid("no statements and no messages: give 1 to 256 statements, or messages");
  }
  if (request.statements_size() > kMaxStatements) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat(request.statements_size(), " statements: at most ", kMaxStatements));
  }
  if (!request.txid().empty()) {
    if (grpc::Status s = CheckTxid(request.txid()); !s.ok()) return s;
  } else if (request.prepare()) {
    return Invalid("prepare needs a txid: a local batch has nothing to prepare");
  }
  if (request.lock_timeout_ms() > kMaxLockTimeoutMs) {
    return Invalid(absl::StrCat("lock_timeout_ms ", request.lock_timeout_ms(),
                                " is over the limit of ", kMaxLockTimeoutMs));
  }
  std::vector<SqlStatement> statements;
  statements.reserve(request.statements_size());
  for (int i = 0; i < request.statements_size(); ++i) {
    const v1::Statement& in = request.statements(i);
    if (in.sql().empty()) return Invalid(absl::StrCat("statement ", i, " is empty"));
    if (in.sql().size() > kMaxSqlBytes) {
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("statement ", i, " is ", in.sql().size(), " bytes: at most ", kMaxSqlBytes));
    }
    if (in.params_size() > kMaxParams) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("statement ", i, " has ", in.params_size(),
                                       " parameters: at most ", kMaxParams));
    }
    // sql and text_value are proto `bytes` (a `string` with bad UTF-8 would
    // be refused by gRPC with a bare INTERNAL): the check is here. The field
    // name is built only for the message.
    if (!IsValidUtf8(in.sql())) {
      return ToGrpcStatus(CheckUtf8(absl::StrCat("statements[", i, "].sql"), in.sql()));
    }
    // SQLite stops reading SQL at a NUL: whatever follows would be dropped
    // without a word.
    if (const size_t nul = in.sql().find('\0'); nul != std::string::npos) {
      return Invalid(absl::StrCat("statements[", i, "].sql contains a NUL byte (byte ", nul,
                                  "): SQLite would ignore the rest of the statement"));
    }
    SqlStatement out{in.sql(), {}};
    out.params.reserve(in.params_size());
    for (int j = 0; j < in.params_size(); ++j) {
      const v1::Value& v = in.params(j);
      if (v.kind_case() == v1::Value::kTextValue && !IsValidUtf8(v.text_value())) {
        return ToGrpcStatus(CheckUtf8(
            absl::StrCat("statements[", i, "].params[", j, "].text_value"), v.text_value()));
      }
      out.params.push_back(FromProto(v));
    }
    statements.push_back(std::move(out));
  }
  ExecuteOptions options;
  options.prepare = request.prepare();
  options.lock_timeout = absl::Milliseconds(request.lock_timeout_ms());
  options.call_deadline = deadline;
  options.messages = MessagesFromProto(request.messages());
  options.named_in_commit = request.named_in_commit();
  options.carries_vote_proof = request.carries_vote_proof();
  absl::StatusOr<ExecuteResult> result =
      participant_->Execute(request.txid(), statements, std::move(options));
  if (!result.ok()) return ToGrpcStatus(result.status());
  if (result->branch_token != 0) {
    response->set_participant(participant_->name());
    response->set_branch_token(result->branch_token);
  }
  if (!result->vote_proof.empty()) {
    response->set_vote_proof(result->vote_proof);
    response->set_endpoint(result->endpoint);
  }
  for (const std::string& id : result->message_ids) response->add_message_ids(id);
  for (const SqlResult& r : result->results) {
    v1::StatementResult* out = response->add_results();
    for (const std::string& c : r.columns) out->add_columns(c);
    for (const auto& row : r.rows) {
      v1::Row* out_row = out->add_rows();
      for (const SqlValue& v : row) ToProto(v, out_row->add_values());
    }
    out->set_changes(r.changes);
    out->set_last_insert_rowid(r.last_insert_rowid);
  }
  if (request.prepare()) response->set_vote(ToProto(result->vote));
  return grpc::Status::OK;
}

grpc::Status AgentService::Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                                   v1::PublishResponse* response) {
  if (request->messages_size() == 0) return Invalid("no messages to publish");
  if (!request->txid().empty()) {
    if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  }
  ExecuteOptions options;
  options.call_deadline = DeadlineOf(context);
  options.messages = MessagesFromProto(request->messages());
  absl::StatusOr<ExecuteResult> result =
      participant_->Execute(request->txid(), {}, std::move(options));
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (const std::string& id : result->message_ids) response->add_message_ids(id);
  return grpc::Status::OK;
}

grpc::Status AgentService::Release(grpc::ServerContext* context, const v1::ReleaseRequest* request,
                                   v1::ReleaseResponse* response) {
  // Only a branch can be released: a local batch has none.
  if (request->txid().empty()) return Invalid("txid is empty: Release needs a txid");
  if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  const ReleaseResult result = participant_->Release(request->txid());
  response->set_released(result.released);
  response->set_detail(result.detail);
  return grpc::Status::OK;
}

}  // namespace txcoord::participant
