#include "rpc/access_policy.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "rpc/grpc_util.h"

namespace txcoord {
namespace {

bool ValidIdentity(absl::string_view entry) {
  if (entry.size() > 255) return false;
  for (const char c : entry) {
    if (c <= ' ' || c == '"' || c == '\'' || c == ',' || c == 0x7f) return false;
  }
  return true;
}

// The flag that grants each role, for refusal messages.
absl::string_view FlagOf(Role role) {
  switch (role) {
    case Role::kOperator:
      return "--admin_allow";
    case Role::kCoordinator:
      return "--coordinator_identity";
    case Role::kAgent:
      return "--agent_identities";
    case Role::kService:
      return "--coordinator_clients (txcoord) or --service_allow (txagent)";
    default:
      return "no flag";
  }
}

std::string Who(const Caller& caller) {
  if (!caller.identity.empty()) return caller.identity.ToString();
  switch (caller.locality) {
    case Locality::kLoopback:
      return "a loopback peer without certificate";
    case Locality::kRemote:
      return "a non-loopback peer without certificate";
    default:
      return "no client certificate";
  }
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kPublic:
      return "public";
    case Role::kOperator:
      return "operator";
    case Role::kCoordinator:
      return "coordinator";
    case Role::kAgent:
      return "agent";
    case Role::kService:
      return "service";
    case Role::kUnknown:
      break;
  }
  return "unknown";
}

Role RoleOf(absl::string_view method) {
  if (absl::StartsWith(method, kCoordinatorAdminPrefix) ||
      absl::StartsWith(method, kAgentAdminPrefix)) {
    return Role::kOperator;
  }
  if (absl::StartsWith(method, "/txcoord.v1.Participant/")) return Role::kCoordinator;
  if (method == "/txcoord.v1.Coordinator/Enlist" ||
      method == "/txcoord.v1.Coordinator/EnlistBatch" ||
      method == "/txcoord.v1.Coordinator/QueryOutcome") {
    return Role::kAgent;
  }
  if (absl::StartsWith(method, "/txcoord.v1.Coordinator/") ||
      absl::StartsWith(method, "/txcoord.v1.Agent/")) {
    return Role::kService;
  }
  if (absl::StartsWith(method, "/grpc.health.v1.Health/") ||
      absl::StartsWith(method, "/grpc.reflection.")) {
    return Role::kPublic;
  }
  return Role::kUnknown;
}

absl::StatusOr<IdentityList> IdentityList::Parse(absl::string_view flag, absl::string_view text) {
  std::vector<std::string> identities;
  if (absl::StripAsciiWhitespace(text).empty()) return IdentityList(false, {});
  if (absl::StripAsciiWhitespace(text) == "*") return Any();
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " \"", text, "\" has an empty entry"));
    }
    if (entry == "*") {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"*\" (any certificate) must be the whole list"));
    }
    if (!ValidIdentity(entry)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " entry \"", entry,
          "\" is not a certificate CN or DNS name (no blanks, quotes or control characters)"));
    }
    identities.emplace_back(entry);
  }
  return IdentityList(false, std::move(identities));
}

bool IdentityList::Contains(const PeerIdentity& peer) const {
  if (peer.empty()) return false;
  if (any_) return true;
  for (const std::string& allowed : identities_) {
    if (!peer.common_name.empty() && peer.common_name == allowed) return true;
    for (const std::string& dns : peer.dns_names) {
      if (absl::EqualsIgnoreCase(dns, allowed)) return true;
    }
  }
  return false;
}

std::string IdentityList::ToString() const {
  if (any_) return "any certificate the CA signed";
  if (identities_.empty()) return "nobody";
  return absl::StrJoin(identities_, ", ");
}

absl::Status AccessPolicy::Check(absl::string_view method, const Caller& caller) const {
  const Role role = RoleOf(method);
  if (role == Role::kPublic) return absl::OkStatus();
  if (role == Role::kUnknown) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " refused to ", Who(caller), ": no role may call it"));
  }
  if (rules_.transport == Transport::kMutualTls) {
    const IdentityList* holders = nullptr;
    switch (role) {
      case Role::kOperator:
        holders = &rules_.operators;
        break;
      case Role::kCoordinator:
        holders = &rules_.coordinator;
        break;
      case Role::kAgent:
        holders = &rules_.agents;
        break;
      default:
        holders = &rules_.services;
        break;
    }
    if (holders->Contains(caller.identity)) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(method, " refused: client identity ",
                                                    Who(caller), " lacks the ", RoleName(role),
                                                    " role (", FlagOf(role), ")"));
  }
  // Without client certificates nobody can be told apart: the data path
  // stays open, and the two roles that can break other callers'
  // transactions are kept to this machine.
  bool remote_allowed = true;
  absl::string_view opt_in;
  if (role == Role::kOperator) {
    if (rules_.transport == Transport::kServerTls) {
      return absl::PermissionDeniedError(absl::StrCat(
          method, " refused: ", Who(caller),
          "; the operator role needs mutual TLS (--tls_ca) and an identity on --admin_allow"));
    }
    remote_allowed = rules_.insecure_remote_admin;
    opt_in = "--insecure_remote_admin";
  } else if (role == Role::kCoordinator) {
    remote_allowed = rules_.insecure_remote_participant;
    opt_in = "--insecure_remote_participant";
  }
  if (remote_allowed || caller.locality != Locality::kRemote) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(method, " refused to ", Who(caller), ": the ", RoleName(role),
                   " role without mutual TLS is served to loopback peers only (", opt_in,
                   " opens it to every host)"));
}

absl::Status AccessPolicy::CheckParticipant(absl::string_view method, absl::string_view participant,
                                            const Caller& caller) const {
  if (rules_.transport != Transport::kMutualTls || rules_.agent_names.empty()) {
    return absl::OkStatus();
  }
  auto bound = rules_.agent_names.find(std::string(participant));
  if (bound != rules_.agent_names.end() && bound->second.Contains(caller.identity)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(method, " refused: client identity ", Who(caller),
                                                  " lacks the agent role for participant \"",
                                                  participant, "\" (--agent_identities)"));
}

absl::Status AccessPolicy::Refuse(absl::string_view method, const Caller& caller, Role role,
                                  absl::Status status) const {
  refused_[static_cast<int>(role)].fetch_add(1, std::memory_order_relaxed);
  TXLOG(WARNING) << "call " << method << " refused (" << Who(caller) << ", role " << RoleName(role)
                 << "): " << status.message();
  return status;
}

absl::Status AccessPolicy::Admit(absl::string_view method, const Caller& caller) const {
  absl::Status allowed = Check(method, caller);
  const Role role = RoleOf(method);
  if (!allowed.ok()) return Refuse(method, caller, role, std::move(allowed));
  if (role == Role::kOperator) {
    TXLOG(INFO) << "admin call " << method << " by " << Who(caller);
  }
  return allowed;
}

absl::Status AccessPolicy::AdmitParticipant(absl::string_view method, absl::string_view participant,
                                            const Caller& caller) const {
  absl::Status allowed = CheckParticipant(method, participant, caller);
  if (!allowed.ok()) return Refuse(method, caller, Role::kAgent, std::move(allowed));
  return allowed;
}

Locality LocalityOfPeer(absl::string_view peer) {
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    return absl::StartsWith(peer, "127.") ? Locality::kLoopback : Locality::kRemote;
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    return absl::StartsWith(peer, "[::1]") || absl::StartsWith(peer, "%5B::1%5D") ||
                   absl::StartsWith(peer, "[::ffff:127.")
               ? Locality::kLoopback
               : Locality::kRemote;
  }
  if (absl::StartsWith(peer, "unix:")) return Locality::kLoopback;
  return Locality::kRemote;
}

Caller CallerOf(const grpc::ServerContextBase& context) {
  Caller caller;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) caller.identity = PeerIdentityOf(*auth);
  caller.locality = LocalityOfPeer(context.peer());
  return caller;
}

bool IsInProcess(const grpc::ServerContextBase& context) {
  // gRPC 1.51 names an in-process peer "unknown" and gives it no transport
  // security type; every network transport (plaintext included) has one.
  if (context.peer() != "unknown") return false;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return auth == nullptr ||
         auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME).empty();
}

grpc::Status AdmitCall(const AccessPolicy* policy, const grpc::ServerContextBase& context,
                       absl::string_view method) {
  if (policy == nullptr) return grpc::Status::OK;
  // The daemon's own HTTP port calls in process, once it has checked its
  // caller with the same policy.
  if (IsInProcess(context)) return grpc::Status::OK;
  return ToGrpcStatus(policy->Admit(method, CallerOf(context)));
}

grpc::Status AccessAuthProcessor::Process(const InputMetadata& auth_metadata,
                                          grpc::AuthContext* context,
                                          OutputMetadata* consumed_auth_metadata,
                                          OutputMetadata* response_metadata) {
  auto path = auth_metadata.find(":path");
  if (path == auth_metadata.end()) {
    // Without the method the call cannot be classified: fail closed.
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "call without a method path");
  }
  const absl::string_view method(path->second.data(), path->second.size());
  Caller caller;
  caller.identity = PeerIdentityOf(*context);
  absl::Status allowed = policy_->Check(method, caller);
  if (!allowed.ok()) {
    // Logged and counted once, here: the handler never runs.
    allowed = policy_->Admit(method, caller);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(allowed.message()));
  }
  return grpc::Status::OK;
}

}  // namespace txcoord
