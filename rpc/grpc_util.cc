#include "rpc/grpc_util.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace txcoord {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // Reconnect quickly after a peer restarts: phase 2 retries depend on it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // No transparent retries: every caller here already treats UNAVAILABLE
  // as "retry" (phase 2, in-doubt resolution, the client's documented
  // contract), and gRPC's retry filter cost about 10% of the CPU of a whole
  // transaction (bench/txn_bench, 2pc:3:64: 300-335 -> 360-397 tx/s).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  if (!credentials) credentials = grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(target, credentials, args);
}

grpc::Status CheckBatchSize(int size, const std::string& what) {
  if (size == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("no ", what, ": give 1 to ", kMaxBatchEntries));
  }
  if (size > kMaxBatchEntries) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat(size, " ", what, ": at most ", kMaxBatchEntries));
  }
  return grpc::Status::OK;
}

SqlValue FromProto(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kIntValue:
      return value.int_value();
    case v1::Value::kRealValue:
      return value.real_value();
    case v1::Value::kTextValue:
      return value.text_value();
    case v1::Value::kBlobValue:
      return Blob{value.blob_value()};
    case v1::Value::kNullValue:
    case v1::Value::KIND_NOT_SET:
      return std::monostate{};
  }
  return std::monostate{};
}

void ToProto(const SqlValue& value, v1::Value* out) {
  switch (value.index()) {
    case 0:
      out->set_null_value(true);
      break;
    case 1:
      out->set_int_value(std::get<int64_t>(value));
      break;
    case 2:
      out->set_real_value(std::get<double>(value));
      break;
    case 3:
      out->set_text_value(std::get<std::string>(value));
      break;
    case 4:
      out->set_blob_value(std::get<Blob>(value).bytes);
      break;
  }
}

}  // namespace txcoord
