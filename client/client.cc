#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/channel_cache.h"
#include "common/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord {

// Keeps the generated stub (and so grpcpp) out of the public header.
class Client::Stub final {
 public:
  explicit Stub(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Coordinator::NewStub(std::move(channel))) {}
  v1::Coordinator::Stub* get() { return stub_.get(); }

 private:
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

namespace {

// BeginRequest.timeout_ms's documented maximum.
constexpr absl::Duration kMaxTxTimeout = absl::Hours(1);

void Prepare(grpc::ClientContext* context, absl::Duration timeout, bool wait_for_ready) {
  SetDeadline(context, timeout);
  context->set_wait_for_ready(wait_for_ready);
}

}  // namespace

Client::Client(const std::string& target, ClientOptions options)
    : Client(options.credentials ? MakeChannel(target, options.credentials) : SharedChannel(target),
             options) {}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(options), stub_(std::make_unique<Stub>(std::move(channel))) {}

Client::~Client() = default;

absl::StatusOr<std::string> Client::Begin(absl::Duration timeout) {
  if (timeout < absl::ZeroDuration() || timeout > kMaxTxTimeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("transaction timeout ", absl::FormatDuration(timeout), " is outside [0, ",
                     absl::FormatDuration(kMaxTxTimeout), "]"));
  }
  v1::BeginRequest request;
  // Rounded up: a positive timeout below 1ms must not turn into 0, which
  // would mean "the coordinator's default".
  request.set_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)))));
  v1::BeginResponse response;
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout, options_.wait_for_ready);
  absl::Status status = FromGrpcStatus(stub_->get()->Begin(&context, request, &response));
  if (!status.ok()) return status;
  return std::move(*response.mutable_txid());
}

absl::StatusOr<CommitResult> Client::Commit(const std::string& txid) {
  v1::CommitRequest request;
  request.set_txid(txid);
  v1::CommitResponse response;
  grpc::ClientContext context;
  Prepare(&context, options_.commit_timeout, options_.wait_for_ready);
  absl::Status status = FromGrpcStatus(stub_->get()->Commit(&context, request, &response));
  if (!status.ok()) return status;
  switch (response.outcome()) {
    case v1::OUTCOME_COMMITTED:
      return CommitResult{true, ""};
    case v1::OUTCOME_ABORTED:
      return CommitResult{false, response.reason()};
    default:
      // The contract allows only the two final outcomes here; anything else
      // is a coordinator bug, and guessing either way could lie to the caller.
      return absl::InternalError(absl::StrCat("coordinator answered Commit of ", txid,
                                              " with outcome ",
                                              v1::Outcome_Name(response.outcome())));
  }
}

absl::Status Client::Abort(const std::string& txid) {
  v1::AbortRequest request;
  request.set_txid(txid);
  v1::AbortResponse response;
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout, options_.wait_for_ready);
  return FromGrpcStatus(stub_->get()->Abort(&context, request, &response));
}

absl::StatusOr<v1::Transaction> Client::GetTransaction(const std::string& txid) {
  v1::GetTransactionRequest request;
  request.set_txid(txid);
  v1::Transaction response;
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout, options_.wait_for_ready);
  absl::Status status = FromGrpcStatus(stub_->get()->GetTransaction(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

}  // namespace txcoord
