// The one place where absl::Status meets grpc::Status, plus small gRPC
// helpers shared by daemons and clients (deadlines, channels, proto values).
// Domain code never includes this header; adapters do.
#ifndef TXCOORD_RPC_GRPC_UTIL_H_
#define TXCOORD_RPC_GRPC_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/sql_value.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord {

// Status codes map one to one; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Sets the deadline of an outgoing call to now + timeout.
void SetDeadline(grpc::ClientContext* context, absl::Duration timeout);

// A channel to `target` ("host:port") with txcoord's defaults (keepalive,
// message size limits). `credentials` nullptr means insecure.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

// Largest message a txcoord daemon accepts or sends.
inline constexpr int kMaxMessageBytes = 16 << 20;

// Batch calls (Participant.Batch, Coordinator.EnlistBatch) carry 1 to
// kMaxBatchEntries entries; CheckBatchSize says which limit `size` breaks
// (INVALID_ARGUMENT for none, RESOURCE_EXHAUSTED for too many), naming the
// entries as `what` ("entries", "enlistments").
inline constexpr int kMaxBatchEntries = 1000;
grpc::Status CheckBatchSize(int size, const std::string& what);

// A batch answer's status: its `code` (a google.rpc.Code, 0 for OK) and
// `message` fields, as the entry's own call would have returned them.
template <typename Answer>
void SetAnswerStatus(const absl::Status& status, Answer* answer) {
  answer->set_code(static_cast<int>(status.code()));
  answer->set_message(std::string(status.message()));
}
template <typename Answer>
absl::Status StatusOfAnswer(const Answer& answer) {
  return absl::Status(static_cast<absl::StatusCode>(answer.code()), answer.message());
}

// Proto <-> domain SQL values.
SqlValue FromProto(const v1::Value& value);
void ToProto(const SqlValue& value, v1::Value* out);

}  // namespace txcoord

#endif  // TXCOORD_RPC_GRPC_UTIL_H_
