// txagent: the participant agent daemon around one SQLite database. Wiring
// only: flags, the participant core, the coordinator link, the in-doubt
// resolver, the config centre (with --registry), the gRPC server and signals.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent_admin_service.h"
#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/agent_service.h"
#include "agent/console_assets.h"
#include "agent/coordinator_router.h"
#include "agent/http_api.h"
#include "agent/outbox_relay.h"
#include "agent/serving_lock.h"
#include "cluster/config_centre.h"
#include "cluster/registry_connection.h"
#include "cluster/settings.h"
#include "common/config_file.h"
#include "common/failpoint.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "common/sqlite_db.h"
#include "common/systemd_notify.h"
#include "common/tcp_listener.h"
#include "common/timer_queue.h"
#include "common/txid.h"
#include "participant/in_doubt_resolver.h"
#include "participant/participant.h"
#include "rpc/daemon.h"
#include "rpc/daemon_flags.h"
#include "rpc/frame.h"
#include "rpc/frame_handler.h"
#include "rpc/grpc_util.h"

ABSL_FLAG(std::string, db, "",
          "The service's SQLite database file (required; created if missing). One txagent "
          "serves it, holding <db>-agent.lock; a second one started on it waits as a standby "
          "and takes over once the first has stopped.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7171",
          "Address to serve gRPC on (host:port; port 0 picks a free port).");
ABSL_FLAG(
    std::string, advertise, "",
    "Address the coordinator should call this agent on. Default: the bound --listen address.");
ABSL_FLAG(std::string, coordinator, "127.0.0.1:7070",
          "The coordinator's address (host:port). With --registry, unused: each txid's calls go "
          "to the coordinator that issued it, found in etcd.");
ABSL_FLAG(std::string, node_id, "",
          "With --registry: this agent's id in etcd ([A-Za-z0-9_.:-]). Default: its --name.");
ABSL_FLAG(std::string, name, "",
          "This participant's name, unique among the services of one transaction "
          "([A-Za-z0-9_.:-]; required).");
ABSL_FLAG(
    absl::Duration, lock_timeout, absl::Seconds(5),
    "Default wait for a row locked by another transaction before Execute fails with ABORTED.");
ABSL_FLAG(absl::Duration, max_statement_time, absl::Seconds(10),
          "Longest the statements of one Execute call may run together (each run, when it re-runs "
          "after a lock wait). Past it SQLite interrupts them, the call's changes are rolled back "
          "and it fails with RESOURCE_EXHAUSTED; the client's own deadline, if sooner, ends it "
          "too. All SQL shares one connection, so this bounds how long a runaway query stalls "
          "every other call. 0: no limit.");
ABSL_FLAG(absl::Duration, branch_idle_timeout, absl::Seconds(60),
          "An unprepared branch idle this long is rolled back and its locks freed.");
ABSL_FLAG(absl::Duration, ask_idle_branches_after, absl::Seconds(5),
          "An unprepared branch the coordinator knows, idle this long, is asked about "
          "(QueryOutcome) and rolled back if its transaction ABORTED: its Abort did not arrive. "
          "0: never ask (the branch then waits for --branch_idle_timeout).");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(5), "Deadline of calls to the coordinator.");
ABSL_FLAG(std::string, failpoints, "",
          "For crash tests only: failpoints to arm, e.g. \"after-commit-logged=crash\" (see "
          "common/failpoint.h). Also read from TXCOORD_FAILPOINTS.");
ABSL_FLAG(std::string, nats_url, "",
          "NATS server (JetStream enabled) that committed outbox messages are published to, e.g. "
          "nats://127.0.0.1:4222. Empty: no broker; messages are kept in the outbox until one "
          "is configured (docs/messaging.md).");
ABSL_FLAG(std::string, outbox_stream, "",
          "JetStream stream to create at start if it does not exist, capturing "
          "--outbox_subjects. Empty: the streams are made by the operator.");
ABSL_FLAG(std::vector<std::string>, outbox_subjects, {},
          "Subjects (comma-separated, wildcards allowed) the --outbox_stream captures.");
ABSL_FLAG(int32_t, outbox_max_attempts, 20,
          "Attempts the stream may refuse a message before it is dead-lettered (kept as dead; "
          "txctl outbox retry sends it again). A broker that cannot be reached uses none.");
ABSL_FLAG(absl::Duration, outbox_max_backoff, absl::Seconds(30),
          "Longest wait between attempts of one message (the first waits 100ms, each next "
          "twice as long).");
ABSL_FLAG(absl::Duration, outbox_publish_timeout, absl::Seconds(5),
          "How long a publish waits for the stream's acknowledgement.");
ABSL_FLAG(absl::Duration, outbox_retention, absl::Hours(1),
          "How long delivered messages stay in the outbox (for txctl outbox) before deletion.");
ABSL_FLAG(int32_t, outbox_max_payload, 512 << 10,
          "Largest message payload in bytes (the broker's max_payload must be larger).");
ABSL_FLAG(int32_t, outbox_max_messages, 1024, "Most messages one branch or local batch may add.");
ABSL_FLAG(std::string, coordinator_identity, "",
          "Under mutual TLS (required there): the identity (certificate CN or DNS name) of the "
          "coordinator, the only caller allowed to prepare, commit and abort branches "
          "(Participant.*). \"*\": any certificate the CA signed.");
ABSL_FLAG(std::string, service_allow, "",
          "Under mutual TLS: comma-separated identities of the services allowed to run SQL here "
          "(Agent.*, the service role). Unset: any certificate the CA signed (logged as a "
          "WARNING at start).");
ABSL_FLAG(bool, insecure_remote_participant, false,
          "INSECURE: without TLS, serve the participant service (prepare, commit, abort) to any "
          "host, not only loopback. Anyone who reaches the port can then settle prepared "
          "branches. Needed for a coordinator on another host without mutual TLS.");
ABSL_FLAG(std::string, vote_deferral, "contended",
          "When an early-prepared Execute the client names in its Commit answers before its "
          "prepare is durable, its YES vote then going to the coordinator by Enlist after the "
          "next sync (docs/protocol.md, \"Deferred votes\"): contended (while a sync runs and "
          "a caller it does not cover already waits for a later one: under load), always, or "
          "never (every such Execute waits for its sync and signs or sends its vote itself).");
ABSL_FLAG(absl::Duration, phase2_sync_delay, absl::Milliseconds(2),
          "How long a phase-2 Commit's answer may wait for a sync another call starts (the "
          "next prepare's, usually) before it syncs the database's log itself: fewer syncs, "
          "the answer still sent only once the commit is durable; the transaction's client "
          "does not wait for it. 0: sync at once. At most 1s.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log level printed: debug, info, warning, error.");

namespace txcoord::participant {
namespace {

std::optional<VoteDeferral> ParseVoteDeferral(const std::string& text) {
  if (text == "contended") return VoteDeferral::kWhenContended;
  if (text == "always") return VoteDeferral::kAlways;
  if (text == "never") return VoteDeferral::kNever;
  return std::nullopt;
}

int Run() {
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "txagent: --log_level must be debug, info, warning or error\n");
    return 2;
  }
  SetMinLogLevel(level);
  const std::string name = absl::GetFlag(FLAGS_name);
  SetLogTag("txagent/" + name);
  absl::Status armed = ArmFailpointsFromEnvironment();
  if (armed.ok() && !absl::GetFlag(FLAGS_failpoints).empty())
    armed = ArmFailpoints(absl::GetFlag(FLAGS_failpoints));
  if (!armed.ok()) {
    TXLOG(ERROR) << "cannot start: " << armed;
    return 2;
  }
  if (absl::GetFlag(FLAGS_db).empty()) {
    TXLOG(ERROR) << "cannot start: --db is required";
    return 2;
  }
  if (!IsValidName(name)) {
    TXLOG(ERROR) << "cannot start: --name is required: 1 to 128 characters of [A-Za-z0-9_.:-]";
    return 2;
  }
  std::optional<VoteDeferral> vote_deferral = ParseVoteDeferral(absl::GetFlag(FLAGS_vote_deferral));
  if (!vote_deferral.has_value()) {
    TXLOG(ERROR) << "cannot start: --vote_deferral must be contended, always or never";
    return 2;
  }
  if (const absl::Duration delay = absl::GetFlag(FLAGS_phase2_sync_delay);
      delay < absl::ZeroDuration() || delay > absl::Seconds(1)) {
    TXLOG(ERROR) << "cannot start: --phase2_sync_delay must be between 0 and 1s, not "
                 << absl::FormatDuration(delay);
    return 2;
  }
  if (absl::GetFlag(FLAGS_max_statement_time) < absl::ZeroDuration()) {
    TXLOG(ERROR) << "cannot start: --max_statement_time must not be negative (0: no limit)";
    return 2;
  }

  RoleFlags roles;
  roles.services_flag = "--service_allow";
  roles.services = absl::GetFlag(FLAGS_service_allow);
  roles.needs_coordinator = true;
  roles.coordinator = absl::GetFlag(FLAGS_coordinator_identity);
  roles.insecure_remote_participant = absl::GetFlag(FLAGS_insecure_remote_participant);
  absl::StatusOr<DaemonSecurity> security = DaemonSecurityFromFlags("txagent", roles);
  if (!security.ok()) {
    TXLOG(ERROR) << "cannot start: " << security.status();
    return 2;
  }

  // With --registry, the coordinators are found in etcd: the view must be
  // read before the first Enlist.
  absl::StatusOr<cluster::RegistryOptions> registry_options = cluster::RegistryOptionsFromFlags();
  if (!registry_options.ok()) {
    TXLOG(ERROR) << "cannot start: " << registry_options.status();
    return 2;
  }
  const std::string node_id =
      absl::GetFlag(FLAGS_node_id).empty() ? name : absl::GetFlag(FLAGS_node_id);
  if (!IsValidName(node_id)) {
    TXLOG(ERROR) << "cannot start: --node_id must be 1 to 128 characters of [A-Za-z0-9_.:-]";
    return 2;
  }
  if (absl::GetFlag(FLAGS_outbox_max_payload) < 0 || absl::GetFlag(FLAGS_outbox_max_messages) < 1 ||
      absl::GetFlag(FLAGS_outbox_max_attempts) < 1) {
    TXLOG(ERROR) << "cannot start: --outbox_max_payload must be >= 0, --outbox_max_messages and "
                    "--outbox_max_attempts >= 1";
    return 2;
  }
  if (absl::GetFlag(FLAGS_ask_idle_branches_after) < absl::ZeroDuration()) {
    TXLOG(ERROR) << "cannot start: --ask_idle_branches_after must be >= 0 (0: never ask)";
    return 2;
  }
  if (!absl::GetFlag(FLAGS_outbox_stream).empty() && absl::GetFlag(FLAGS_outbox_subjects).empty()) {
    TXLOG(ERROR) << "cannot start: --outbox_stream " << absl::GetFlag(FLAGS_outbox_stream)
                 << " needs subjects to capture (--outbox_subjects)";
    return 2;
  }

  // One txagent serves a database (agent/serving_lock.h): a second one on
  // the same file waits here, before it registers, opens the database or
  // listens, and takes over once the first has stopped or died. Every flag
  // is checked before: a standby that waits may be needed much later.
  absl::StatusOr<std::string> db_file = DatabaseFileName(absl::GetFlag(FLAGS_db));
  if (!db_file.ok()) {
    TXLOG(ERROR) << "cannot start: " << db_file.status();
    return 1;
  }
  const std::string lock_path = ServingLockPath(*db_file);
  absl::StatusOr<bool> serving = TryTakeServingLock(lock_path);
  if (serving.ok() && !*serving) {
    const std::string standby = absl::StrCat("standby: another txagent serves ", *db_file, " (",
                                             lock_path, " is locked); waiting to take over");
    TXLOG(WARNING) << standby;
    (void)NotifySystemd("STATUS=" + standby);
    while (serving.ok() && !*serving) {
      if (ShutdownSignalPending()) {
        TXLOG(INFO) << "txagent " << name << " stopped (a standby; served nothing)";
        return 0;
      }
      absl::SleepFor(absl::Milliseconds(100));  // polling a lock held by another process
      serving = TryTakeServingLock(lock_path);
    }
    if (serving.ok()) {
      TXLOG(INFO) << "took over " << *db_file << ": its txagent stopped";
    }
  }
  if (!serving.ok()) {
    TXLOG(ERROR) << "cannot start: " << serving.status();
    return 1;
  }
  std::unique_ptr<cluster::RegistryConnection> registry;
  std::shared_ptr<cluster::CoordinatorDirectory> coordinators;
  if (registry_options->url.empty()) {
    coordinators =
        std::make_shared<cluster::StaticCoordinatorDirectory>(absl::GetFlag(FLAGS_coordinator));
  } else {
    absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> opened =
        cluster::RegistryConnection::Open(*registry_options);
    absl::StatusOr<cluster::Discovery*> discovery =
        opened.ok() ? (*opened)->StartDiscovery() : opened.status();
    if (!discovery.ok()) {
      TXLOG(ERROR) << "cannot start: reading the registry: " << discovery.status();
      return 1;
    }
    registry = *std::move(opened);
    // The agent never Begins: the service and policy only matter for that.
    coordinators = std::make_shared<cluster::RegistryCoordinatorDirectory>(
        *discovery, cluster::kDefaultCoordinatorService, cluster::BalancePolicy::kRoundRobin);
  }
  // Never freed: the participant and the resolver's queries use it until
  // the process exits.
  auto* link = new CoordinatorRouter(coordinators, security->channel_credentials, name,
                                     absl::GetFlag(FLAGS_rpc_timeout));
  MetricsRegistry metrics_registry;
  AgentMetrics metrics(&metrics_registry);
  // The participant's maintenance (idle branches, old one-phase outcomes)
  // and the in-doubt resolver's scans: short work, on one timer thread.
  auto timers = std::make_unique<TimerQueue>();
  // Deferred votes wait for a sync on their own thread, so that a slow
  // disk holds up neither that work nor it the votes.
  auto vote_timers = std::make_unique<TimerQueue>();
  ParticipantOptions options;
  options.scheduler = timers.get();
  options.vote_scheduler = vote_timers.get();
  options.observer = &metrics;
  options.db_path = absl::GetFlag(FLAGS_db);
  options.name = name;
  options.default_lock_timeout = absl::GetFlag(FLAGS_lock_timeout);
  options.vote_deferral = *vote_deferral;
  options.phase2_sync_delay = absl::GetFlag(FLAGS_phase2_sync_delay);
  options.branch_idle_timeout = absl::GetFlag(FLAGS_branch_idle_timeout);
  options.max_statement_time = absl::GetFlag(FLAGS_max_statement_time);
  options.outbox.max_payload = static_cast<size_t>(absl::GetFlag(FLAGS_outbox_max_payload));
  options.outbox.max_messages = static_cast<size_t>(absl::GetFlag(FLAGS_outbox_max_messages));
  // The relay starts after the participant it reads; commits made before
  // then are found by its first round.
  std::atomic<OutboxRelay*> relay_to_wake{nullptr};
  options.on_outbox_pending = [&relay_to_wake] {
    if (OutboxRelay* relay = relay_to_wake.load(std::memory_order_acquire)) relay->Wake();
  };
  absl::StatusOr<std::unique_ptr<Participant>> participant = Participant::Open(options, link);
  if (!participant.ok()) {
    TXLOG(ERROR) << "cannot start: " << participant.status();
    return 1;
  }
  OutboxRelayOptions relay_options;
  relay_options.nats_url = absl::GetFlag(FLAGS_nats_url);
  relay_options.stream = absl::GetFlag(FLAGS_outbox_stream);
  relay_options.stream_subjects = absl::GetFlag(FLAGS_outbox_subjects);
  relay_options.lock_path = *db_file + "-relay.lock";
  relay_options.policy.max_attempts = absl::GetFlag(FLAGS_outbox_max_attempts);
  relay_options.policy.max_backoff = absl::GetFlag(FLAGS_outbox_max_backoff);
  relay_options.publish_timeout = absl::GetFlag(FLAGS_outbox_publish_timeout);
  relay_options.retention = absl::GetFlag(FLAGS_outbox_retention);
  absl::StatusOr<std::unique_ptr<OutboxRelay>> relay =
      OutboxRelay::Start(participant->get(), relay_options, &metrics_registry);
  if (!relay.ok()) {
    TXLOG(ERROR) << "cannot start: " << relay.status();
    return 2;
  }
  relay_to_wake.store(relay->get(), std::memory_order_release);
  if (absl::StatusOr<OutboxCounts> outbox = (*participant)->CountOutbox(false); outbox.ok()) {
    TXLOG(INFO) << "outbox: " << outbox->pending << " pending, " << outbox->dead << " dead; "
                << (relay_options.nats_url.empty()
                        ? "no broker configured (--nats_url): committed messages wait in the "
                          "outbox, nothing is published"
                        : absl::StrCat("relaying to ", relay_options.nats_url,
                                       relay_options.stream.empty()
                                           ? ""
                                           : absl::StrCat(" (stream ", relay_options.stream, ")")));
  }
  // With --registry, the policy in etcd replaces the flags before the first
  // call is served, and follows etcd from then on.
  Participant* const core = participant->get();
  OutboxRelay* const relay_core = relay->get();
  absl::StatusOr<std::unique_ptr<cluster::ConfigCentre>> config =
      cluster::ConfigCentre::StartFromFlags(
          cluster::SettingRole::kAgent, name,
          [core, relay_core](const std::string& setting, const cluster::SettingValue& value) {
            if (absl::Status applied = ApplyAgentSetting(core, relay_core, setting, value);
                !applied.ok()) {
              TXLOG(ERROR) << "config: " << setting << " not applied: " << applied;
            }
          },
          &metrics_registry, "txagent");
  if (!config.ok()) {
    TXLOG(ERROR) << "cannot start: " << config.status();
    return 1;
  }
  const size_t in_doubt = (*participant)->ListPrepared().size();
  metrics.Watch(participant->get());
  metrics.WatchLink(link);
  CountRefusals(security->server.access_policy.get(), &metrics_registry);
  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics_server =
      StartMetricsFromFlags("txagent", &metrics_registry);
  if (!metrics_server.ok()) {
    TXLOG(ERROR) << "cannot start: " << metrics_server.status();
    return 1;
  }

  const AccessPolicy* policy = security->server.access_policy.get();
  ParticipantService participant_service(participant->get(), policy);
  AgentService agent_service(participant->get());
  AgentAdminService admin_service(participant->get(), name, absl::GetFlag(FLAGS_coordinator),
                                  policy, relay->get());
  InflightTracker inflight;
  ServerOptions server_options = security->server;
  server_options.inflight = &inflight;
  // A refused --framed_listen stops the start before anything serves.
  if (absl::Status framed = CheckFramedFlags("txagent", *security); !framed.ok()) {
    TXLOG(ERROR) << "cannot start: " << framed;
    return 1;
  }
  absl::StatusOr<ServerHandle> server =
      StartServer("txagent", absl::GetFlag(FLAGS_listen),
                  {&participant_service, &agent_service, &admin_service}, server_options);
  if (!server.ok()) {
    TXLOG(ERROR) << "cannot start: " << server.status();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      StartHttpFromFlags("txagent",
                         AgentHttpRoutes(server->server->InProcessChannel(grpc::ChannelArguments()),
                                         [&metrics_registry] { return metrics_registry.Render(); }),
                         *security, ConsoleAssets());
  if (!http.ok()) {
    TXLOG(ERROR) << "cannot start: " << http.status();
    return 1;
  }
  const std::string advertise = absl::GetFlag(FLAGS_advertise);
  const std::string endpoint = advertise.empty() ? server->address : advertise;
  link->set_endpoint(endpoint);
  // After the endpoint is known: an Execute's enlistment names it.
  std::vector<std::pair<FrameMethod, FrameServer::Handler>> framed_calls =
      participant_service.FramedCalls(policy, &inflight);
  framed_calls.emplace_back(FrameMethod::kAgentExecute,
                            agent_service.FramedExecute(policy, &inflight));
  absl::StatusOr<std::shared_ptr<FrameServer>> framed_port =
      StartFramedFromFlags("txagent", *security, std::move(framed_calls), &metrics_registry);
  if (!framed_port.ok()) {
    TXLOG(ERROR) << "cannot start: " << framed_port.status();
    return 1;
  }
  // From now on enlistments also name the framed port, for the
  // coordinator's Participant calls (not one bound to loopback while the
  // coordinator reaches this agent elsewhere: it would dial its own host).
  if (*framed_port != nullptr) {
    link->set_endpoint(endpoint, ReachableAt((*framed_port)->address(), endpoint));
  }
  if (registry != nullptr) {
    absl::StatusOr<cluster::NodeRecord> record = cluster::SelfRecord(
        cluster::kAgentRole, name, node_id, endpoint, *http != nullptr ? (*http)->address() : "");
    absl::Status registered =
        record.ok() ? registry->Register(*std::move(record)) : record.status();
    if (!registered.ok()) {
      TXLOG(ERROR) << "cannot start: registering in etcd: " << registered;
      return 1;
    }
    registry->AddMetrics(&metrics_registry);
    TXLOG(INFO) << "registered in etcd as " << registry->registrar()->key();
  }
  // QueryOutcome blocks for up to --rpc_timeout: the resolver's queries
  // run one at a time on a thread of their own, so that a slow coordinator
  // delays neither the scans nor the maintenance.
  auto outcome_queries = std::make_unique<TimerQueue>();
  ResolverOptions resolver_options;
  if (absl::GetFlag(FLAGS_ask_idle_branches_after) > absl::ZeroDuration()) {
    resolver_options.idle_ask_after = absl::GetFlag(FLAGS_ask_idle_branches_after);
  } else {
    resolver_options.idle_ask_after = absl::InfiniteDuration();
  }
  auto resolver = std::make_unique<InDoubtResolver>(
      participant->get(), timers.get(),
      [link, queries = outcome_queries.get()](const std::string& txid, OutcomeCallback done) {
        queries->After(absl::ZeroDuration(),
                       [link, txid, done = std::move(done)] { done(link->QueryOutcome(txid)); });
      },
      resolver_options);
  resolver->Start();
  TXLOG(INFO) << "txagent " << name << " serving on " << server->address
              << (*framed_port != nullptr ? ", framed port on " + (*framed_port)->address() : "")
              << ": db=" << options.db_path << " coordinator="
              << (registry != nullptr ? "from " + registry_options->url
                                      : absl::GetFlag(FLAGS_coordinator))
              << ", " << in_doubt << " in-doubt branch(es) restored";

  if (absl::Status notified = NotifySystemd("READY=1"); !notified.ok()) {
    TXLOG(WARNING) << notified;
  }

  const int sig = WaitForShutdownSignal();
  (void)NotifySystemd("STOPPING=1");
  TXLOG(INFO) << "signal " << sig << ": finishing in-flight calls";
  if (registry != nullptr) registry->Drain();
  if (*http != nullptr) (*http)->Stop();
  if (*framed_port != nullptr && !(*framed_port)->Stop(absl::Now() + absl::Seconds(5))) {
    TXLOG(WARNING) << "framed-port calls still running after 5s; stopping anyway";
  }
  if (!DrainServer(*server, inflight, absl::Seconds(5))) {
    TXLOG(WARNING) << "calls still in flight after 5s; stopping anyway";
  }
  // Executes answered YES whose votes wait for a sync: send them now, so
  // that their Commits need not wait out the coordinator's prepare timeout,
  // and let them (and every other enlistment on its way) arrive before the
  // process ends.
  (*participant)->SendDeferredVotesNow();
  if (!link->AwaitAsyncEnlists(absl::Now() + absl::Seconds(5))) {
    TXLOG(WARNING) << "enlistments still unanswered after 5s; stopping anyway (their branches "
                      "are resolved with the coordinator after the restart)";
  }
  if (registry != nullptr) registry->Deregister();
  metrics_server->reset();  // its scrapes read the participant
  config->reset();          // no setting applied past here
  resolver.reset();
  outcome_queries.reset();  // waits for a query in flight (at most --rpc_timeout)
  relay_to_wake.store(nullptr);
  (*relay)->Stop();  // it reads the participant too
  // Unprepared branches are lost by design (their Prepare will vote NO);
  // prepared ones are in the database and resume on restart.
  participant->reset();
  vote_timers.reset();
  timers.reset();
  registry.reset();
  TXLOG(INFO) << "txagent " << name << " stopped";
  std::fflush(stdout);
  std::_Exit(0);  // the server object is still draining idle connections
}

}  // namespace
}  // namespace txcoord::participant

int main(int argc, char** argv) {
  txcoord::BlockShutdownSignals();
  txcoord::DisableMutexDeadlockDetection();
  if (absl::Status off = txcoord::TurnOffSqliteMemoryStatistics(); !off.ok()) {
    std::fprintf(stderr, "txagent: %s\n", std::string(off.message()).c_str());
  }
  txcoord::NormalizeFlagNames(argc, argv);
  txcoord::SetFlagUsage(
      "txagent: the txcoord participant agent around one SQLite database.\n"
      "Usage: txagent --db=FILE --name=NAME [--listen=127.0.0.1:7171] "
      "[--coordinator=127.0.0.1:7070] [flags]\n"
      "Flags may be written --lock-timeout or --lock_timeout, and read from --config=FILE.");
  if (absl::Status config = txcoord::ApplyConfigFileFromArgs(argc, argv); !config.ok()) {
    std::fprintf(stderr, "txagent: cannot start: %s\n", std::string(config.message()).c_str());
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  return txcoord::participant::Run();
}
