// The security and metrics flags both daemons take (--tls_cert, --tls_key,
// --tls_ca from common/tls_flags.h, plus --admin_allow and
// --metrics_listen), turned into what the daemon's wiring needs: server
// options for StartServer, credentials for the calls it makes, and the
// metrics endpoint. Link txcoord_daemon_flags to get them.
#ifndef TXCOORD_COMMON_DAEMON_FLAGS_H_
#define TXCOORD_COMMON_DAEMON_FLAGS_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/daemon.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/metrics_server.h"

namespace txcoord {

struct DaemonSecurity {
  ServerOptions server;  // credentials and admin policy of the gRPC port
  // For every call this daemon makes; nullptr: insecure.
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
};

// Reads the TLS files and the allow list and logs the resulting mode
// (a WARNING when ports are plaintext and the admin API open). Refuses
// (INVALID_ARGUMENT) --admin_allow without mutual TLS: an allow list that
// no caller can be checked against would give a false sense of safety.
absl::StatusOr<DaemonSecurity> DaemonSecurityFromFlags(const std::string& name);

// Starts the HTTP/JSON port on --http_listen (nullptr when the flag is
// empty, the default) with `routes` and `assets`, the TLS files and admin
// policy of the gRPC port, and logs who may use its admin routes.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpFromFlags(
    const std::string& name, std::vector<HttpRoute> routes, const DaemonSecurity& security,
    std::map<std::string, HttpAsset> assets = {});

// Starts the metrics endpoint on --metrics_listen, serving `registry`
// (which must outlive it), and logs "<name> metrics on HOST:PORT". nullptr
// when the flag is empty (the default: no endpoint).
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsFromFlags(
    const std::string& name, const MetricsRegistry* registry);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_DAEMON_FLAGS_H_
