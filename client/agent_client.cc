#include "client/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/channel_cache.h"
#include "common/check.h"
#include "rpc/frame.h"
#include "rpc/framed_channel.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord {

// Keeps the generated stub (and so grpcpp) out of the public header.
class AgentClient::Stub final {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Agent::NewStub(std::move(channel))) {}
  v1::Agent::Stub* get() { return stub_.get(); }

 private:
  std::unique_ptr<v1::Agent::Stub> stub_;
};

namespace {

// ExecuteRequest.lock_timeout_ms's documented maximum.
constexpr absl::Duration kMaxLockTimeout = absl::Seconds(60);

SqlResult FromProto(const v1::StatementResult& proto) {
  SqlResult result;
  result.columns.assign(proto.columns().begin(), proto.columns().end());
  result.rows.reserve(proto.rows_size());
  for (const v1::Row& row : proto.rows()) {
    std::vector<SqlValue>& values = result.rows.emplace_back();
    values.reserve(row.values_size());
    for (const v1::Value& value : row.values()) values.push_back(txcoord::FromProto(value));
  }
  result.changes = proto.changes();
  result.last_insert_rowid = proto.last_insert_rowid();
  return result;
}

void ToProto(const std::vector<Message>& messages,
             google::protobuf::RepeatedPtrField<v1::OutboxMessage>* out) {
  out->Reserve(static_cast<int>(messages.size()));
  for (const Message& m : messages) {
    v1::OutboxMessage* proto = out->Add();
    proto->set_topic(m.topic);
    proto->set_key(m.key);
    proto->set_payload(m.payload);
    for (const auto& [name, value] : m.headers) {
      v1::Header* header = proto->add_headers();
      header->set_name(name);
      header->set_value(value);
    }
  }
}

}  // namespace

AgentClient::AgentClient(const std::string& target, AgentClientOptions options)
    : AgentClient(
          options.credentials ? MakeChannel(target, options.credentials) : SharedChannel(target),
          options) {}

AgentClient::AgentClient(std::shared_ptr<grpc::Channel> channel, AgentClientOptions options)
    : options_(options),
      stub_(std::make_unique<Stub>(std::move(channel))),
      framed_(FramedChannelUnlessTls(options.framed_address, options.credentials != nullptr)) {}

AgentClient::~AgentClient() = default;

namespace {

absl::StatusOr<v1::ExecuteRequest> ExecuteRequestOf(const std::string& txid,
                                                    const std::vector<SqlStatement>& statements,
                                                    const ExecuteOptions& options) {
  if (options.lock_timeout < absl::ZeroDuration() || options.lock_timeout > kMaxLockTimeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("lock timeout ", absl::FormatDuration(options.lock_timeout),
                     " is outside [0, ", absl::FormatDuration(kMaxLockTimeout), "]"));
  }
  v1::ExecuteRequest request;
  request.set_txid(txid);
  request.set_prepare(options.prepare);
  request.set_named_in_commit(options.named_in_commit);
  request.set_carries_vote_proof(options.carries_vote_proof);
  // Rounded up: a positive timeout below 1ms must not turn into 0, which
  // would mean "the agent's default".
  request.set_lock_timeout_ms(static_cast<uint32_t>(
      absl::ToInt64Milliseconds(absl::Ceil(options.lock_timeout, absl::Milliseconds(1)))));
  request.mutable_statements()->Reserve(static_cast<int>(statements.size()));
  for (const SqlStatement& statement : statements) {
    v1::Statement* proto = request.add_statements();
    proto->set_sql(statement.sql);
    for (const SqlValue& param : statement.params) ToProto(param, proto->add_params());
  }
  ToProto(options.messages, request.mutable_messages());
  return request;
}

absl::StatusOr<ExecuteResult> ExecuteResultOf(const v1::ExecuteResponse& response, int statements) {
  if (response.results_size() != statements) {
    return absl::InternalError(absl::StrCat("agent returned ", response.results_size(),
                                            " results for ", statements, " statements"));
  }
  ExecuteResult result;
  result.results.reserve(response.results_size());
  for (const v1::StatementResult& proto : response.results())
    result.results.push_back(FromProto(proto));
  result.vote = response.vote();
  result.message_ids.assign(response.message_ids().begin(), response.message_ids().end());
  result.participant = response.participant();
  result.branch_token = response.branch_token();
  result.vote_proof = response.vote_proof();
  result.endpoint = response.endpoint();
  return result;
}

}  // namespace

void AgentClient::PrepareContext(grpc::ClientContext* context,
                                 const ExecuteOptions& options) const {
  // A call may legitimately spend its whole lock timeout waiting; the
  // deadline must not cut that wait short and turn ABORTED (retry the
  // transaction) into DEADLINE_EXCEEDED (outcome unknown).
  SetDeadline(context, CallTimeout(options));
  context->set_wait_for_ready(options_.wait_for_ready);
}

absl::StatusOr<ExecuteResult> AgentClient::Execute(const std::string& txid,
                                                   const std::vector<SqlStatement>& statements,
                                                   const ExecuteOptions& options) {
  absl::StatusOr<v1::ExecuteRequest> request = ExecuteRequestOf(txid, statements, options);
  if (!request.ok()) return request.status();
  v1::ExecuteResponse response;
  if (framed_ != nullptr) {
    absl::Status status = framed_->Call(FrameMethod::kAgentExecute, *request, CallTimeout(options),
                                        options_.wait_for_ready, &response);
    if (!status.ok()) return status;
    return ExecuteResultOf(response, request->statements_size());
  }
  grpc::ClientContext context;
  PrepareContext(&context, options);
  absl::Status status = FromGrpcStatus(stub_->get()->Execute(&context, *request, &response));
  if (!status.ok()) return status;
  return ExecuteResultOf(response, request->statements_size());
}

class ExecuteRound::Impl {
 public:
  struct Call {
    grpc::ClientContext context;
    v1::ExecuteRequest request;
    v1::ExecuteResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ExecuteResponse>> reader;
    absl::StatusOr<ExecuteResult> result = absl::UnknownError("no answer");
    // On the framed port: the agent's channel, and the connection the
    // answer comes on.
    FramedChannel* framed = nullptr;
    int framed_fd = -1;
    absl::Time deadline;
  };

  ~Impl() {
    // Not waited for: the answers are never read, so the connections are
    // out of step.
    for (const std::unique_ptr<Call>& call : calls_) {
      if (call->framed_fd >= 0) FramedChannel::Discard(call->framed_fd);
    }
    if (in_flight_ > 0) {
      for (const std::unique_ptr<Call>& call : calls_) call->context.TryCancel();
      Drain();
    }
    // Every tag is taken: nothing is left for Next but the shutdown.
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  void Start(AgentClient& agent, const std::string& txid,
             const std::vector<SqlStatement>& statements, const ExecuteOptions& options) {
    TXCOORD_CHECK(!waited_) << "ExecuteRound::Start after Wait";
    Call& call = *calls_.emplace_back(std::make_unique<Call>());
    absl::StatusOr<v1::ExecuteRequest> request = ExecuteRequestOf(txid, statements, options);
    if (!request.ok()) {
      call.result = request.status();
      return;
    }
    call.request = *std::move(request);
    if (agent.framed_ != nullptr) {
      const absl::Duration timeout = agent.CallTimeout(options);
      call.deadline = absl::Now() + timeout;
      absl::StatusOr<int> fd =
          agent.framed_->Send(FrameMethod::kAgentExecute, call.request, timeout, call.deadline,
                              agent.options_.wait_for_ready);
      if (!fd.ok()) {
        call.result = fd.status();
        return;
      }
      call.framed = agent.framed_.get();
      call.framed_fd = *fd;
      return;
    }
    agent.PrepareContext(&call.context, options);
    call.reader = agent.stub_->get()->AsyncExecute(&call.context, call.request, &queue_);
    call.reader->Finish(&call.response, &call.status, &call);
    ++in_flight_;
  }

  std::vector<absl::StatusOr<ExecuteResult>> Wait() {
    TXCOORD_CHECK(!waited_) << "ExecuteRound::Wait called twice";
    waited_ = true;
    Drain();
    // Every request went out in Start: the answers are read in turn, the
    // round waiting as long as its slowest call.
    for (const std::unique_ptr<Call>& call : calls_) FinishFramedCall(*call);
    std::vector<absl::StatusOr<ExecuteResult>> results;
    results.reserve(calls_.size());
    for (const std::unique_ptr<Call>& call : calls_) results.push_back(std::move(call->result));
    return results;
  }

 private:
  // Runs on the calling thread until every call sent has its answer: Next
  // polls the calls' connections itself.
  void Drain() {
    while (in_flight_ > 0) {
      void* tag = nullptr;
      bool ok = false;
      TXCOORD_CHECK(queue_.Next(&tag, &ok)) << "an Execute round's queue shut down early";
      // A client's Finish tag always comes back ok: its status says how
      // the call ended.
      --in_flight_;
      Call& call = *static_cast<Call*>(tag);
      Conclude(call, FromGrpcStatus(call.status));
    }
  }

  static void FinishFramedCall(Call& call) {
    if (call.framed_fd < 0) return;
    const absl::Status status = call.framed->Receive(call.framed_fd, call.deadline, &call.response);
    call.framed_fd = -1;
    Conclude(call, status);
  }

  // The call's result, from how it ended and (when OK) its response.
  static void Conclude(Call& call, const absl::Status& status) {
    call.result = status.ok() ? ExecuteResultOf(call.response, call.request.statements_size())
                              : absl::StatusOr<ExecuteResult>(status);
  }

  grpc::CompletionQueue queue_;
  std::vector<std::unique_ptr<Call>> calls_;
  int in_flight_ = 0;
  bool waited_ = false;
};

ExecuteRound::ExecuteRound() : impl_(std::make_unique<Impl>()) {}
ExecuteRound::~ExecuteRound() = default;

void ExecuteRound::Start(AgentClient& agent, const std::string& txid,
                         const std::vector<SqlStatement>& statements,
                         const ExecuteOptions& options) {
  impl_->Start(agent, txid, statements, options);
}

std::vector<absl::StatusOr<ExecuteResult>> ExecuteRound::Wait() { return impl_->Wait(); }

absl::StatusOr<std::vector<std::string>> AgentClient::Publish(
    const std::string& txid, const std::vector<Message>& messages) {
  v1::PublishRequest request;
  request.set_txid(txid);
  ToProto(messages, request.mutable_messages());
  v1::PublishResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, options_.call_timeout);
  context.set_wait_for_ready(options_.wait_for_ready);
  absl::Status status = FromGrpcStatus(stub_->get()->Publish(&context, request, &response));
  if (!status.ok()) return status;
  return std::vector<std::string>(response.message_ids().begin(), response.message_ids().end());
}

absl::StatusOr<SqlResult> AgentClient::ExecuteOne(const std::string& txid, const std::string& sql,
                                                  const std::vector<SqlValue>& params,
                                                  const ExecuteOptions& options) {
  absl::StatusOr<ExecuteResult> result = Execute(txid, {SqlStatement{sql, params}}, options);
  if (!result.ok()) return result.status();
  return std::move(result->results.front());
}

absl::StatusOr<ReleaseResult> AgentClient::Release(const std::string& txid) {
  v1::ReleaseRequest request;
  request.set_txid(txid);
  v1::ReleaseResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, options_.call_timeout);
  context.set_wait_for_ready(options_.wait_for_ready);
  absl::Status status = FromGrpcStatus(stub_->get()->Release(&context, request, &response));
  if (!status.ok()) return status;
  return ReleaseResult{response.released(), std::move(*response.mutable_detail())};
}

}  // namespace txcoord
