// Who may call what on a daemon: every gRPC method belongs to one role
// (operator, coordinator, agent, service), each role is granted to
// certificate identities under mutual TLS, and to loopback peers (or, with
// an explicit insecure flag, to anyone) without client certificates. The
// gRPC and HTTP ports of a daemon decide with the same AccessPolicy.
//
//   AccessRules rules;
//   rules.transport = Transport::kMutualTls;
//   rules.operators = *IdentityList::Parse("--admin_allow", "operator");
//   auto policy = std::make_shared<const AccessPolicy>(std::move(rules));
//   absl::Status s = policy->Admit("/txcoord.v1.Participant/Commit", caller);
#ifndef TXCOORD_RPC_ACCESS_POLICY_H_
#define TXCOORD_RPC_ACCESS_POLICY_H_

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/server_context.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tcp_listener.h"
#include "rpc/admin_auth.h"

namespace txcoord {

// The part of the protocol a method belongs to; the role is what a caller
// needs to call it.
enum class Role {
  kPublic,       // health checks and reflection: anyone the port lets in
  kOperator,     // CoordinatorAdmin.*, AgentAdmin.*: txctl and the console
  kCoordinator,  // Participant.* at an agent: only the coordinator
  kAgent,        // Coordinator.Enlist, EnlistBatch, QueryOutcome: agents, each for its own name
  kService,      // the rest of Coordinator.* and every Agent.*: services running transactions
  kUnknown,      // anything else: refused
};
inline constexpr int kRoleCount = 6;

// "operator", "coordinator", "agent", "service", "public", "unknown".
absl::string_view RoleName(Role role);

// The role of a full gRPC method name ("/txcoord.v1.Participant/Commit").
// Whole services map to one role, so methods added later to a service are
// covered by its role without a change here.
Role RoleOf(absl::string_view method);

// Identities given on one flag: certificate subject CNs (matched exactly)
// or DNS subjectAltNames (ignoring case); "*" means any certificate the CA
// signed. Immutable.
class IdentityList final {
 public:
  // Comma-separated; blanks around commas are ignored; "" is the empty list
  // (nobody). INVALID_ARGUMENT naming `flag` for an empty entry or one with
  // characters no CN or DNS name has (blank, quote, comma, control).
  static absl::StatusOr<IdentityList> Parse(absl::string_view flag, absl::string_view text);
  // Any verified certificate.
  static IdentityList Any() { return IdentityList(true, {}); }
  IdentityList() = default;

  bool any() const { return any_; }
  bool empty() const { return !any_ && identities_.empty(); }
  // True if `peer` has an identity and it is on the list (any identity when any()).
  bool Contains(const PeerIdentity& peer) const;
  const std::vector<std::string>& identities() const { return identities_; }
  // "any certificate the CA signed", "nobody", or "a, b".
  std::string ToString() const;

 private:
  IdentityList(bool any, std::vector<std::string> identities)
      : any_(any), identities_(std::move(identities)) {}
  bool any_ = false;
  std::vector<std::string> identities_;
};

// What a port can know about its callers.
enum class Transport {
  kPlaintext,  // no TLS: no identities
  kServerTls,  // TLS without client certificates: no identities either
  kMutualTls,  // every caller has a certificate the CA verified
};

// Where a call comes from, as far as the checking code knows.
enum class Locality { kUnknown, kLoopback, kRemote };

struct Caller {
  PeerIdentity identity;  // from the verified client certificate; empty without one
  Locality locality = Locality::kUnknown;
};

// The configuration of one daemon (rpc/daemon_flags.cc builds it).
struct AccessRules {
  Transport transport = Transport::kPlaintext;
  // Under mutual TLS, who holds each role.
  IdentityList operators;    // --admin_allow
  IdentityList coordinator;  // txagent --coordinator_identity
  IdentityList services;     // txcoord --coordinator_clients, txagent --service_allow
  IdentityList agents;       // txcoord: the identities of --agent_identities, or Any()
  // txcoord --agent_identities: participant name -> identities that may
  // enlist and ask outcomes for it. Empty: no binding (any agent, any name).
  std::map<std::string, IdentityList> agent_names;
  // Without client certificates, operator and coordinator calls are
  // served to loopback peers only, unless these are set.
  bool insecure_remote_admin = false;
  bool insecure_remote_participant = false;
};

// Immutable apart from its refusal counters; thread-safe.
class AccessPolicy final {
 public:
  explicit AccessPolicy(AccessRules rules) : rules_(std::move(rules)) {}
  AccessPolicy(const AccessPolicy&) = delete;
  AccessPolicy& operator=(const AccessPolicy&) = delete;

  // OK if `caller` may call `method`; otherwise PERMISSION_DENIED naming
  // the method, the identity (or address class) seen and the role missing.
  // A rule that depends on the caller's locality passes when the locality
  // is unknown: the caller is then checked again where it is known.
  absl::Status Check(absl::string_view method, const Caller& caller) const;
  // For methods that carry a participant name (Enlist, EnlistBatch,
  // QueryOutcome): OK unless --agent_identities binds names and the
  // caller's identity is not bound to `participant`.
  absl::Status CheckParticipant(absl::string_view method, absl::string_view participant,
                                const Caller& caller) const;

  // Check / CheckParticipant, plus: a refusal is logged at WARNING and
  // counted, an allowed operator call is logged at INFO.
  absl::Status Admit(absl::string_view method, const Caller& caller) const;
  absl::Status AdmitParticipant(absl::string_view method, absl::string_view participant,
                                const Caller& caller) const;

  // Calls refused so far for lack of `role`.
  uint64_t refused(Role role) const {
    return refused_[static_cast<int>(role)].load(std::memory_order_relaxed);
  }
  const AccessRules& rules() const { return rules_; }

 private:
  absl::Status Refuse(absl::string_view method, const Caller& caller, Role role,
                      absl::Status status) const;

  const AccessRules rules_;
  mutable std::atomic<uint64_t> refused_[kRoleCount] = {};
};

// "ipv4:127.0.0.1:5000" and "ipv6:[::1]:5000" are loopback, other
// addresses remote.
Locality LocalityOfPeer(absl::string_view grpc_peer);
// IsLoopbackAddress is common/tcp_listener.h's.

// True for a call over the server's in-process channel (the daemon's own
// HTTP port, which checked its caller with the same policy).
bool IsInProcess(const grpc::ServerContextBase& context);

// The caller of a gRPC call being served.
Caller CallerOf(const grpc::ServerContextBase& context);

// For handlers: `policy->Admit(method, CallerOf(*context))` as a
// grpc::Status. OK when `policy` is nullptr (no checks configured) and for
// in-process calls (the daemon's HTTP port, which checked its caller).
grpc::Status AdmitCall(const AccessPolicy* policy, const grpc::ServerContextBase& context,
                       absl::string_view method);

// Enforces an AccessPolicy on every call of a TLS port, before any handler
// runs (gRPC calls it with the call's headers, which include the method
// path). It does not see the peer's address: rules that depend on it are
// checked again in the handlers (AdmitCall).
class AccessAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit AccessAuthProcessor(std::shared_ptr<const AccessPolicy> policy)
      : policy_(std::move(policy)) {}

  // Pure computation: run on gRPC's own thread, no pool needed.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const std::shared_ptr<const AccessPolicy> policy_;
};

}  // namespace txcoord

#endif  // TXCOORD_RPC_ACCESS_POLICY_H_
