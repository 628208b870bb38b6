#include "rpc/daemon_flags.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "rpc/frame_handler.h"
#include "rpc/tls.h"
#include "rpc/tls_flags.h"

ABSL_FLAG(std::string, admin_allow, "",
          "Comma-separated client identities (certificate subject CN or DNS subjectAltName) "
          "allowed to call the admin API (txctl, the console): the operator role. Needs mutual "
          "TLS (--tls_cert, --tls_key, --tls_ca). With TLS and an empty list, the admin API is "
          "refused to everyone; without TLS it is served to loopback peers only (see "
          "--insecure_remote_admin).");
ABSL_FLAG(bool, insecure_remote_admin, false,
          "INSECURE: without TLS, serve the admin API (gRPC and HTTP, and the console) to any "
          "host, not only loopback. Anyone who reaches the port can then abort or resolve "
          "transactions.");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "How often the --tls_* files are read again: new connections (served and made) use "
          "the certificates found; open ones keep theirs. Replace the files to rotate "
          "certificates without a restart. Whole seconds, at least 1s.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Address (host:port; port 0 picks one) of the Prometheus metrics endpoint, served "
          "over plain HTTP at /metrics. Empty: no endpoint. Bind it to a trusted interface.");

ABSL_FLAG(std::string, framed_listen, "",
          "Also serve the hot call of services (txagent: Execute; txcoord: Commit) on this "
          "address (host:port; port 0 picks one) without gRPC: plain framed TCP, each call run on "
          "the thread that read it, cheaper than a gRPC call (docs/protocol.md, \"The framed "
          "port\"). Clients use it when given its address. Empty (the default): off. Refused with "
          "TLS; the gRPC port serves every call either way.");
ABSL_FLAG(int32_t, framed_max_connections, 256,
          "Framed-port connections served at once, one thread each; one more is refused with "
          "UNAVAILABLE.");
ABSL_FLAG(std::string, http_listen, "",
          "Address (host:port; port 0 picks one) of the HTTP/JSON API and the web console "
          "(/ui); HTTPS with the --tls_* flags. Empty: no HTTP port. See docs/http.md.");
ABSL_FLAG(bool, http_admin_insecure_remote, false,
          "INSECURE: the former name of --insecure_remote_admin (which now covers gRPC and "
          "HTTP alike); still accepted.");

ABSL_FLAG(absl::Duration, http_read_timeout, absl::Seconds(10),
          "How long the HTTP port waits for the next bytes of a request (its headers or body) "
          "before it closes the connection; whole seconds, at least 1s.");
ABSL_FLAG(absl::Duration, http_idle_timeout, absl::Seconds(5),
          "How long the HTTP port keeps a connection that sends no request (between keep-alive "
          "requests, or before the first one) before it closes it; whole seconds, at least 1s. "
          "Each such connection holds one of the port's 32 workers meanwhile.");

namespace txcoord {

absl::StatusOr<std::map<std::string, IdentityList>> ParseAgentIdentities(absl::string_view text) {
  std::map<std::string, std::vector<std::string>> names;
  if (absl::StripAsciiWhitespace(text).empty()) return std::map<std::string, IdentityList>();
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agent_identities entry \"", entry, "\" is not participant=identity"));
    }
    names[std::string(absl::StripAsciiWhitespace(entry.substr(0, eq)))].emplace_back(
        absl::StripAsciiWhitespace(entry.substr(eq + 1)));
  }
  std::map<std::string, IdentityList> bound;
  for (const auto& [name, identities] : names) {
    absl::StatusOr<IdentityList> list =
        IdentityList::Parse("--agent_identities", absl::StrJoin(identities, ","));
    if (!list.ok()) return list.status();
    if (list->any()) {
      return absl::InvalidArgumentError(
          "--agent_identities binds names to named identities; \"*\" is not one");
    }
    bound.emplace(name, *std::move(list));
  }
  return bound;
}

namespace {

// Every identity of the bindings, for the role check before the name is
// known.
IdentityList AllAgents(const std::map<std::string, IdentityList>& bound) {
  std::vector<std::string> all;
  for (const auto& [name, list] : bound) {
    all.insert(all.end(), list.identities().begin(), list.identities().end());
  }
  return *IdentityList::Parse("--agent_identities", absl::StrJoin(all, ","));
}

// A role's identities from its flag; `unset` when the flag was not given.
absl::StatusOr<IdentityList> RoleList(absl::string_view flag, const std::string& text,
                                      IdentityList unset) {
  if (absl::StripAsciiWhitespace(text).empty()) return unset;
  return IdentityList::Parse(flag, text);
}

void LogRoles(const std::string& name, const AccessRules& rules, const RoleFlags& roles) {
  const auto say = [&name](bool warn, const std::string& what) {
    if (warn) {
      TXLOG(WARNING) << name << ": " << what;
    } else {
      TXLOG(INFO) << name << ": " << what;
    }
  };
  say(false, absl::StrCat("mutual TLS; operator role (admin API): ", rules.operators.ToString()));
  if (roles.needs_coordinator) {
    say(rules.coordinator.any(),
        absl::StrCat("coordinator role (Participant.*): ", rules.coordinator.ToString()));
  } else if (rules.agent_names.empty()) {
    say(true,
        "agent role (Enlist, EnlistBatch, QueryOutcome): any certificate the CA signed, "
        "under any participant name (give --agent_identities to bind names)");
  } else {
    std::vector<std::string> bindings;
    for (const auto& [participant, list] : rules.agent_names) {
      bindings.push_back(absl::StrCat(participant, "=", list.ToString()));
    }
    say(false, absl::StrCat("agent role bound by name: ", absl::StrJoin(bindings, "; ")));
  }
  say(rules.services.any(),
      absl::StrCat("service role (",
                   roles.needs_coordinator ? "Agent.*" : "Begin, Commit, Abort, GetTransaction",
                   "): ", rules.services.ToString(),
                   rules.services.any()
                       ? absl::StrCat(" (give ", roles.services_flag, " to name them)")
                       : ""));
}

}  // namespace

absl::StatusOr<DaemonSecurity> DaemonSecurityFromFlags(const std::string& name,
                                                       const RoleFlags& roles) {
  const TlsFiles files = TlsFilesFromFlags();
  absl::StatusOr<TlsConfig> tls = LoadTlsConfig(files);
  if (!tls.ok()) return tls.status();
  absl::StatusOr<IdentityList> operators =
      IdentityList::Parse("--admin_allow", absl::GetFlag(FLAGS_admin_allow));
  if (!operators.ok()) return operators.status();
  absl::StatusOr<IdentityList> services =
      RoleList(roles.services_flag, roles.services, IdentityList::Any());
  if (!services.ok()) return services.status();
  absl::StatusOr<IdentityList> coordinator =
      RoleList("--coordinator_identity", roles.coordinator, IdentityList());
  if (!coordinator.ok()) return coordinator.status();
  absl::StatusOr<std::map<std::string, IdentityList>> agent_names =
      ParseAgentIdentities(roles.agent_identities);
  if (!agent_names.ok()) return agent_names.status();

  AccessRules rules;
  rules.operators = *std::move(operators);
  rules.services = *std::move(services);
  rules.coordinator = *std::move(coordinator);
  rules.agents = agent_names->empty() ? IdentityList::Any() : AllAgents(*agent_names);
  rules.agent_names = *std::move(agent_names);
  rules.insecure_remote_admin =
      absl::GetFlag(FLAGS_insecure_remote_admin) || absl::GetFlag(FLAGS_http_admin_insecure_remote);
  rules.insecure_remote_participant = roles.insecure_remote_participant;

  // The first identity flag given, for the refusal below.
  std::string given;
  if (!rules.operators.empty()) {
    given = "--admin_allow";
  } else if (!roles.services.empty()) {
    given = roles.services_flag;
  } else if (!roles.coordinator.empty()) {
    given = "--coordinator_identity";
  } else if (!rules.agent_names.empty()) {
    given = "--agent_identities";
  }
  if (!given.empty() && !tls->enabled()) {
    return absl::InvalidArgumentError(
        absl::StrCat(given,
                     " needs mutual TLS (--tls_cert, --tls_key and --tls_ca): without client "
                     "certificates no caller can be identified"));
  }
  if (!given.empty() && !tls->has_ca()) {
    return absl::InvalidArgumentError(
        absl::StrCat(given, " needs --tls_ca: without it clients present no certificate to check"));
  }

  DaemonSecurity security;
  const absl::Duration reload = absl::GetFlag(FLAGS_tls_reload_interval);
  if (reload < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls_reload_interval must be at least 1s");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server =
      ReloadingServerCredentials(files, *tls, reload);
  if (!server.ok()) return server.status();
  security.server.credentials = *std::move(server);
  security.channel_credentials = ReloadingChannelCredentials(files, *tls, reload);

  if (!tls->enabled() || !tls->has_ca()) {
    rules.transport = tls->enabled() ? Transport::kServerTls : Transport::kPlaintext;
    security.server.access_policy = std::make_shared<const AccessPolicy>(std::move(rules));
    const AccessRules& r = security.server.access_policy->rules();
    const std::string mode = tls->enabled() ? "TLS without --tls_ca (clients are not authenticated)"
                                            : "no TLS (plaintext)";
    TXLOG(WARNING) << name << ": " << mode << ": the data path is open to anyone who can reach "
                   << "the port";
    if (tls->enabled()) {
      TXLOG(WARNING) << name << ": admin API refused to everyone (it needs mutual TLS)";
    } else if (r.insecure_remote_admin) {
      TXLOG(WARNING) << name << ": --insecure_remote_admin: the admin API is open to ANY host "
                     << "that reaches the port";
    } else {
      TXLOG(WARNING) << name << ": admin API served to loopback peers only";
    }
    if (roles.needs_coordinator) {
      if (r.insecure_remote_participant) {
        TXLOG(WARNING) << name << ": --insecure_remote_participant: the participant service "
                       << "(Participant.*: prepare, commit, abort) is open to ANY host that "
                       << "reaches the port";
      } else {
        TXLOG(WARNING) << name << ": participant service (Participant.*) served to loopback "
                       << "peers only: a coordinator on another host needs mutual TLS and "
                       << "--coordinator_identity (or --insecure_remote_participant)";
      }
    }
    return security;
  }

  rules.transport = Transport::kMutualTls;
  if (roles.needs_coordinator && rules.coordinator.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs --coordinator_identity: the CN or DNS name of the coordinator's "
        "certificate, the only identity allowed to prepare, commit and abort branches here "
        "(\"*\" allows any certificate the CA signed)");
  }
  if (rules.insecure_remote_admin || rules.insecure_remote_participant) {
    TXLOG(WARNING) << name << ": the --insecure_remote_* flags have no effect under mutual TLS: "
                   << "identities decide";
  }
  LogRoles(name, rules, roles);
  security.server.access_policy = std::make_shared<const AccessPolicy>(std::move(rules));
  return security;
}

absl::Status CheckFramedFlags(const std::string& name, const DaemonSecurity& security) {
  if (absl::GetFlag(FLAGS_framed_listen).empty()) return absl::OkStatus();
  if (security.server.credentials != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--framed_listen serves plain TCP, and this ", name,
        "'s gRPC port has TLS: leave --framed_listen empty (services then make every call over "
        "TLS on --listen)"));
  }
  if (const int max = absl::GetFlag(FLAGS_framed_max_connections); max < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--framed_max_connections must be at least 1, got ", max));
  }
  return absl::OkStatus();
}

namespace {

// The framed port's server, for metrics registered before it exists.
class FramedServerSlot {
 public:
  void Set(std::shared_ptr<FrameServer> server) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    server_ = std::move(server);
  }
  // fn(server), or 0 while there is none.
  template <typename Fn>
  double Read(Fn fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return server_ == nullptr ? 0 : static_cast<double>(fn(*server_));
  }

 private:
  absl::Mutex mu_;
  std::shared_ptr<FrameServer> server_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<FrameServer>> StartFramedFromFlags(
    const std::string& name, const DaemonSecurity& security,
    std::vector<std::pair<FrameMethod, FrameServer::Handler>> calls, MetricsRegistry* registry) {
  const std::string listen = absl::GetFlag(FLAGS_framed_listen);
  if (listen.empty()) return nullptr;
  if (absl::Status checked = CheckFramedFlags(name, security); !checked.ok()) return checked;
  FrameServerOptions options;
  options.name = name + " framed";
  options.listen = listen;
  options.max_connections = absl::GetFlag(FLAGS_framed_max_connections);
  // The metrics are registered before the port serves, so that no scrape
  // misses a call already answered; they read 0 until the server is set.
  // Shared with them, as their renders may outlive the daemon's own handle
  // on a failed start.
  auto slot = std::make_shared<FramedServerSlot>();
  for (const auto& [method, handler] : calls) {
    registry->AddCounterFunction(
        name + "_framed_calls_total", "Calls served on the framed port (--framed_listen).",
        [slot, code = static_cast<uint8_t>(method)] {
          return slot->Read([code](FrameServer& server) { return server.calls(code); });
        },
        {{"method", FrameMethodName(method)}});
  }
  registry->AddGauge(name + "_framed_connections", "Framed-port connections open.", [slot] {
    return slot->Read([](FrameServer& server) { return server.open_connections(); });
  });
  registry->AddCounterFunction(
      name + "_framed_refused_connections_total",
      "Framed-port connections refused: over --framed_max_connections, or no thread for them.",
      [slot] {
        return slot->Read([](FrameServer& server) { return server.refused_connections(); });
      });
  absl::StatusOr<std::unique_ptr<FrameServer>> started =
      FrameServer::Start(std::move(options), FrameMethods(std::move(calls)));
  if (!started.ok()) return started.status();
  std::shared_ptr<FrameServer> server = *std::move(started);
  slot->Set(server);
  TXLOG(WARNING) << name << ": framed port without TLS: its calls are open to any host that "
                 << "reaches " << server->address();
  return server;
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpFromFlags(
    const std::string& name, std::vector<HttpRoute> routes, const DaemonSecurity& security,
    std::map<std::string, HttpAsset> assets) {
  const std::string listen = absl::GetFlag(FLAGS_http_listen);
  if (listen.empty()) return nullptr;
  HttpServerOptions options;
  options.tls = TlsFilesFromFlags();
  options.access_policy = security.server.access_policy;
  options.read_timeout = absl::GetFlag(FLAGS_http_read_timeout);
  options.idle_timeout = absl::GetFlag(FLAGS_http_idle_timeout);
  options.assets = std::move(assets);
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(name, listen, std::move(routes), std::move(options));
  if (!server.ok()) return server.status();
  if (!(*server)->tls()) {
    if (security.server.access_policy->rules().insecure_remote_admin) {
      TXLOG(WARNING) << name << ": HTTP without TLS and --insecure_remote_admin: the admin "
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

void CountRefusals(const AccessPolicy* policy, MetricsRegistry* registry) {
  if (policy == nullptr) return;
  for (const Role role :
       {Role::kOperator, Role::kCoordinator, Role::kAgent, Role::kService, Role::kUnknown}) {
    registry->AddCounterFunction(
        "txcoord_calls_refused_total",
        "Calls refused before their handler ran, by the role the caller lacked (gRPC and HTTP).",
        [policy, role] { return static_cast<double>(policy->refused(role)); },
        {{"role", std::string(RoleName(role))}});
  }
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
