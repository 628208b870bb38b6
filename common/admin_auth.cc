#include "common/admin_auth.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace txcoord {
namespace {

bool ValidIdentity(absl::string_view entry) {
  if (entry.size() > 255) return false;
  for (const char c : entry) {
    if (c <= ' ' || c == '"' || c == '\'' || c == ',' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

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

absl::StatusOr<AdminPolicy> AdminPolicy::Parse(absl::string_view allow) {
  std::vector<std::string> allowed;
  if (absl::StripAsciiWhitespace(allow).empty()) return AdminPolicy(std::move(allowed));
  for (absl::string_view entry : absl::StrSplit(allow, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--admin_allow \"", allow, "\" has an empty entry"));
    }
    if (!ValidIdentity(entry)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--admin_allow entry \"", entry,
          "\" is not a certificate CN or DNS name (no blanks, quotes or control characters)"));
    }
    allowed.emplace_back(entry);
  }
  return AdminPolicy(std::move(allowed));
}

absl::Status AdminPolicy::Check(absl::string_view method, const PeerIdentity& peer) const {
  if (!IsAdminMethod(method)) return absl::OkStatus();
  for (const std::string& allowed : allowed_) {
    if (!peer.common_name.empty() && peer.common_name == allowed) return absl::OkStatus();
    for (const std::string& dns : peer.dns_names) {
      if (absl::EqualsIgnoreCase(dns, allowed)) return absl::OkStatus();
    }
  }
  if (peer.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(method,
                     " refused: no client certificate; admin calls need one whose CN or DNS name "
                     "is in the daemon's --admin_allow"));
  }
  return absl::PermissionDeniedError(absl::StrCat(method, " refused: client identity ",
                                                  peer.ToString(),
                                                  " is not in the daemon's --admin_allow"));
}

grpc::Status AdminAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata,
                                         OutputMetadata* response_metadata) {
  auto path = auth_metadata.find(":path");
  if (path == auth_metadata.end()) {
    // Without the method the call cannot be classified: fail closed.
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "call without a method path");
  }
  const absl::string_view method(path->second.data(), path->second.size());
  if (!IsAdminMethod(method)) return grpc::Status::OK;
  const PeerIdentity peer = PeerIdentityOf(*context);
  const absl::Status allowed = policy_->Check(method, peer);
  if (!allowed.ok()) {
    TXLOG(WARNING) << "admin call " << method << " refused (" << peer.ToString() << ")";
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(allowed.message()));
  }
  TXLOG(INFO) << "admin call " << method << " by " << peer.ToString();
  return grpc::Status::OK;
}

}  // namespace txcoord
