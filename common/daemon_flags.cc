#include "common/daemon_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/tls_flags.h"

ABSL_FLAG(std::string, admin_allow, "",
          "Comma-separated client identities (certificate subject CN or DNS subjectAltName) "
          "allowed to call the admin API (txctl). Needs mutual TLS (--tls_cert, --tls_key, "
          "--tls_ca). With TLS and an empty list, the admin API is refused to everyone; "
          "without TLS it is open to anyone who can reach the port.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Address (host:port; port 0 picks one) of the Prometheus metrics endpoint, served "
          "over plain HTTP at /metrics. Empty: no endpoint. Bind it to a trusted interface.");

namespace txcoord {

absl::StatusOr<DaemonSecurity> DaemonSecurityFromFlags(const std::string& name) {
  absl::StatusOr<TlsConfig> tls = LoadTlsConfig(TlsFilesFromFlags());
  if (!tls.ok()) return tls.status();
  absl::StatusOr<AdminPolicy> policy = AdminPolicy::Parse(absl::GetFlag(FLAGS_admin_allow));
  if (!policy.ok()) return policy.status();

  DaemonSecurity security;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = ServerCredentials(*tls);
  if (!server.ok()) return server.status();
  security.server.credentials = *std::move(server);
  security.channel_credentials = ChannelCredentials(*tls);

  if (!tls->enabled()) {
    if (!policy->allowed().empty()) {
      return absl::InvalidArgumentError(
          "--admin_allow needs mutual TLS (--tls_cert, --tls_key and --tls_ca): without client "
          "certificates no caller can be identified");
    }
    // Kept working for development and tests on one machine; say loudly
    // what it means.
    TXLOG(WARNING) << name << ": no TLS: gRPC is plaintext and the admin API is open to anyone "
                   << "who can reach the port (give --tls_cert, --tls_key, --tls_ca and "
                   << "--admin_allow)";
    return security;
  }
  if (!tls->has_ca() && !policy->allowed().empty()) {
    return absl::InvalidArgumentError(
        "--admin_allow needs --tls_ca: without it clients present no certificate to check");
  }
  // With TLS the admin API is always guarded, even by an empty list.
  security.server.admin_policy = std::make_shared<const AdminPolicy>(*std::move(policy));
  if (!tls->has_ca()) {
    TXLOG(WARNING) << name << ": TLS without --tls_ca: clients are not authenticated and the "
                   << "admin API is refused to everyone";
  } else if (security.server.admin_policy->allowed().empty()) {
    TXLOG(INFO) << name << ": mutual TLS; admin API refused to everyone (no --admin_allow)";
  } else {
    TXLOG(INFO) << name << ": mutual TLS; admin API allowed to "
                << absl::StrJoin(security.server.admin_policy->allowed(), ", ");
  }
  return security;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsFromFlags(
    const std::string& name, const MetricsRegistry* registry) {
  const std::string listen = absl::GetFlag(FLAGS_metrics_listen);
  if (listen.empty()) return nullptr;
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(listen, [registry] { return registry->Render(); });
  if (!server.ok()) return server.status();
  TXLOG(INFO) << name << " metrics on " << (*server)->address();
  return server;
}

}  // namespace txcoord
