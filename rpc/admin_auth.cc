#include "rpc/admin_auth.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace txcoord {

bool IsAdminMethod(absl::string_view method) {
  return absl::StartsWith(method, kCoordinatorAdminPrefix) ||
         absl::StartsWith(method, kAgentAdminPrefix);
}

std::string PeerIdentity::ToString() const {
  if (empty()) return "no client certificate";
  std::vector<std::string> parts;
  if (!common_name.empty()) parts.push_back(absl::StrCat("CN=", common_name));
  for (const std::string& dns : dns_names) parts.push_back(absl::StrCat("DNS=", dns));
  return absl::StrJoin(parts, " ");
}

PeerIdentity PeerIdentityOf(const grpc::AuthContext& context) {
  PeerIdentity peer;
  // Only a verified peer certificate counts: these properties are filled
  // by the TLS handshake, never from anything the client sends in a call.
  for (const grpc::string_ref& cn : context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    peer.common_name.assign(cn.data(), cn.size());
  }
  for (const grpc::string_ref& dns : context.FindPropertyValues(GRPC_PEER_DNS_PROPERTY_NAME)) {
    peer.dns_names.emplace_back(dns.data(), dns.size());
  }
  return peer;
}

}  // namespace txcoord
