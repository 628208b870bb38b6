// Who may call a daemon's admin API (the CoordinatorAdmin and AgentAdmin
// services): clients whose TLS certificate names an identity on the
// --admin_allow list. The data path (Coordinator, Participant, Agent) is
// not affected: a verified client certificate is enough there.
//
//   absl::StatusOr<AdminPolicy> policy = AdminPolicy::Parse("operator,ops.example.com");
//   ServerOptions options{credentials, std::make_shared<AdminPolicy>(*policy)};
//   StartServer("txcoord", listen, services, options);
#ifndef TXCOORD_COMMON_ADMIN_AUTH_H_
#define TXCOORD_COMMON_ADMIN_AUTH_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// The allow list. Immutable; thread-safe.
class AdminPolicy final {
 public:
  // `allow`: comma-separated identities, each a certificate subject CN or a
  // DNS subjectAltName; blanks around commas are ignored; empty allows
  // nobody. INVALID_ARGUMENT for an empty entry or one with characters no
  // CN or DNS name should have (space, quote, control characters).
  static absl::StatusOr<AdminPolicy> Parse(absl::string_view allow);

  // OK if `peer` may call `method`: any non-admin method, or an admin one
  // when the peer's CN (exactly) or one of its DNS names (ignoring case)
  // is on the list. Otherwise PERMISSION_DENIED naming the method and the
  // identity seen.
  absl::Status Check(absl::string_view method, const PeerIdentity& peer) const;

  const std::vector<std::string>& allowed() const { return allowed_; }

 private:
  explicit AdminPolicy(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {}
  std::vector<std::string> allowed_;
};

// Enforces an AdminPolicy on every call of a TLS server (set on its
// ServerCredentials; gRPC calls it with the call's headers, which include
// the method path, before any handler runs). Refusals and admin calls let
// through are logged with the identity.
class AdminAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit AdminAuthProcessor(std::shared_ptr<const AdminPolicy> policy)
      : policy_(std::move(policy)) {}

  // Pure computation: run on gRPC's own thread, no pool needed.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const std::shared_ptr<const AdminPolicy> policy_;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_ADMIN_AUTH_H_
