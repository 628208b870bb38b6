// HTTP routes that answer by calling the daemon's own gRPC service over an
// in-process channel, so that HTTP and gRPC share every check and meaning;
// and the JSON forms of the protocol's shared types (docs/http.md).
#ifndef TXCOORD_RPC_HTTP_GRPC_H_
#define TXCOORD_RPC_HTTP_GRPC_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "rpc/grpc_util.h"
#include "rpc/http_server.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord {

// Calls `method` on `stub` with `timeout`, waiting for the server to be
// ready (it is in-process); the gRPC status as an absl::Status.
template <typename Stub, typename Request, typename Response>
absl::Status CallGrpc(Stub* stub,
                      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                      const Request& request, Response* response, absl::Duration timeout) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  context.set_wait_for_ready(true);
  return FromGrpcStatus((stub->*method)(&context, request, response));
}

// "TX_STATE_COMMITTED" -> "COMMITTED": enum names without their prefix.
std::string EnumName(const std::string& full, const std::string& prefix);

// SQL values: null, true/false (INTEGER 1/0), integers as JSON numbers (or
// {"int": "<decimal>"} beyond 2^53, where JavaScript loses digits), other
// numbers as REAL (or {"real": n}), strings as TEXT (UTF-8), {"blob":
// "<base64>"} as BLOB. INVALID_ARGUMENT naming `where` for anything else.
absl::Status ValueFromJson(const nlohmann::json& json, const std::string& where, v1::Value* out);
nlohmann::json ValueToJson(const v1::Value& value);

nlohmann::json TransactionToJson(const v1::Transaction& tx);

}  // namespace txcoord

#endif  // TXCOORD_RPC_HTTP_GRPC_H_
