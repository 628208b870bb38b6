// Who a gRPC caller is: the identity in its verified TLS certificate, and
// which methods are the admin API. The rules that use them are in
// rpc/access_policy.h.
//
//   PeerIdentity peer = PeerIdentityOf(*context.auth_context());
#ifndef TXCOORD_RPC_ADMIN_AUTH_H_
#define TXCOORD_RPC_ADMIN_AUTH_H_

#include <grpcpp/security/auth_context.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace txcoord {

// Method-name prefixes of the admin services (full gRPC method names look
// like "/txcoord.v1.CoordinatorAdmin/ForceAbort").
inline constexpr absl::string_view kCoordinatorAdminPrefix = "/txcoord.v1.CoordinatorAdmin/";
inline constexpr absl::string_view kAgentAdminPrefix = "/txcoord.v1.AgentAdmin/";

// True for a method of CoordinatorAdmin or AgentAdmin.
bool IsAdminMethod(absl::string_view method);

// What a client's verified certificate says about it.
struct PeerIdentity {
  std::string common_name;             // subject CN; empty if none
  std::vector<std::string> dns_names;  // DNS subjectAltNames

  bool empty() const { return common_name.empty() && dns_names.empty(); }
  // "CN=operator DNS=ops.example.com", or "no client certificate".
  std::string ToString() const;
};

// The identity in a call's auth context (empty without a client
// certificate, e.g. on an insecure port or with server-only TLS).
PeerIdentity PeerIdentityOf(const grpc::AuthContext& context);

}  // namespace txcoord

#endif  // TXCOORD_RPC_ADMIN_AUTH_H_
