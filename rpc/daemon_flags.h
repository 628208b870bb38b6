// The security and metrics flags both daemons take (--tls_cert, --tls_key,
// --tls_ca from rpc/tls_flags.h, plus --admin_allow and
// --metrics_listen), turned into what the daemon's wiring needs: server
// options for StartServer, credentials for the calls it makes, and the
// metrics endpoint. Link txcoord_daemon_flags to get them.
#ifndef TXCOORD_RPC_DAEMON_FLAGS_H_
#define TXCOORD_RPC_DAEMON_FLAGS_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "rpc/daemon.h"
#include "rpc/frame.h"
#include "rpc/frame_server.h"
#include "rpc/http_server.h"

namespace txcoord {

// The role flags a daemon defines itself, as given (empty: not given).
struct RoleFlags {
  // txcoord --coordinator_clients, txagent --service_allow: who may run
  // transactions (Begin, Commit, ... at the coordinator; Agent.* at an
  // agent). Unset: any certificate the CA signed.
  std::string services_flag;  // the flag's name, for messages
  std::string services;
  // txagent --coordinator_identity: who may call Participant.*. Required
  // under mutual TLS when `needs_coordinator`.
  bool needs_coordinator = false;
  std::string coordinator;
  // txcoord --agent_identities: "name=identity,..." binding participant
  // names to the agents that may enlist and ask outcomes for them.
  std::string agent_identities;
  // txagent --insecure_remote_participant.
  bool insecure_remote_participant = false;
};

struct DaemonSecurity {
  ServerOptions server;  // credentials and access policy of the gRPC port
  // For every call this daemon makes; nullptr: insecure.
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
};

// Reads the TLS files, the allow lists and `roles`, and logs at start who
// may do what (a WARNING for every role open to more than named
// identities). Refuses (INVALID_ARGUMENT) identity lists without mutual
// TLS: a list no caller can be checked against would give a false sense of
// safety; and, under mutual TLS, a txagent without --coordinator_identity.
absl::StatusOr<DaemonSecurity> DaemonSecurityFromFlags(const std::string& name,
                                                       const RoleFlags& roles);

// "orders=agent-orders,payments=agent-payments" -> the map of
// AccessRules::agent_names (a name given twice has both identities).
// INVALID_ARGUMENT for an entry without "=", a bad name or identity.
absl::StatusOr<std::map<std::string, IdentityList>> ParseAgentIdentities(absl::string_view text);

// Starts the HTTP/JSON port on --http_listen (nullptr when the flag is
// empty, the default) with `routes` and `assets`, the TLS files and admin
// policy of the gRPC port, and logs who may use its admin routes.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpFromFlags(
    const std::string& name, std::vector<HttpRoute> routes, const DaemonSecurity& security,
    std::map<std::string, HttpAsset> assets = {});

// What StartFramedFromFlags would refuse, checked before anything serves.
absl::Status CheckFramedFlags(const std::string& name, const DaemonSecurity& security);

// Starts the framed port on --framed_listen (nullptr when the flag is
// empty, the default) serving `calls` (FrameMethods): FAILED_PRECONDITION
// when the gRPC port has TLS (the framed port has none), INVALID_ARGUMENT
// for a bad --framed_max_connections. Prints "<name> framed listening on
// HOST:PORT", logs a WARNING that it is open to whoever reaches it, and
// adds <name>_framed_calls_total{method="Agent.Execute"} (one series per
// method served), _connections and _refused_connections_total to
// `registry` (the server must outlive its renders).
absl::StatusOr<std::shared_ptr<FrameServer>> StartFramedFromFlags(
    const std::string& name, const DaemonSecurity& security,
    std::vector<std::pair<FrameMethod, FrameServer::Handler>> calls, MetricsRegistry* registry);

// Adds txcoord_calls_refused_total{role=...} to `registry`, read from
// `policy` (which must outlive the registry's renders).
void CountRefusals(const AccessPolicy* policy, MetricsRegistry* registry);

// Starts the metrics endpoint on --metrics_listen, serving `registry`
// (which must outlive it), and logs "<name> metrics on HOST:PORT". nullptr
// when the flag is empty (the default: no endpoint).
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsFromFlags(
    const std::string& name, const MetricsRegistry* registry);

}  // namespace txcoord

#endif  // TXCOORD_RPC_DAEMON_FLAGS_H_
