#include "common/daemon_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
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

ABSL_FLAG(std::string, http_listen, "",
          "Address (host:port; port 0 picks one) of the HTTP/JSON API and the web console "
          "(/ui); HTTPS with the --tls_* flags. Empty: no HTTP port. See docs/http.md.");
ABSL_FLAG(bool, http_admin_insecure_remote, false,
          "INSECURE: without TLS, serve the HTTP admin endpoints and console to any host, not "
          "only loopback. Anyone who reaches the port can then abort or mark transactions.");

ABSL_FLAG(absl::Duration, http_read_timeout, absl::Seconds(10),
          "How long the HTTP port waits for the next bytes of a request (its headers or body) "
          "before it closes the connection; whole seconds, at least 1s.");
ABSL_FLAG(absl::Duration, http_idle_timeout, absl::Seconds(5),
          "How long the HTTP port keeps a connection that sends no request (between keep-alive "
          "requests, or before the first one) before it closes it; whole seconds, at least 1s. "
          "Each such connection holds one of the port's 32 workers meanwhile.");

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

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpFromFlags(
    const std::string& name, std::vector<HttpRoute> routes, const DaemonSecurity& security,
    std::map<std::string, HttpAsset> assets) {
  const std::string listen = absl::GetFlag(FLAGS_http_listen);
  if (listen.empty()) return nullptr;
  HttpServerOptions options;
  options.tls = TlsFilesFromFlags();
  options.admin_policy = security.server.admin_policy;
  options.allow_remote_admin_without_tls = absl::GetFlag(FLAGS_http_admin_insecure_remote);
  options.read_timeout = absl::GetFlag(FLAGS_http_read_timeout);
  options.idle_timeout = absl::GetFlag(FLAGS_http_idle_timeout);
  options.assets = std::move(assets);
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(name, listen, std::move(routes), std::move(options));
  if (!server.ok()) return server.status();
  if (!(*server)->tls()) {
    if (absl::GetFlag(FLAGS_http_admin_insecure_remote)) {
      TXLOG(WARNING) << name << ": HTTP without TLS and --http_admin_insecure_remote: the admin "
                     << "endpoints and console are open to ANY host that reaches "
                     << (*server)->address();
    } else {
      TXLOG(WARNING) << name << ": HTTP without TLS: the data endpoints are open to any host "
                     << "that reaches " << (*server)->address()
                     << "; the admin endpoints and console are served to loopback only";
    }
  }
  return server;
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
