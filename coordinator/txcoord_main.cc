// txcoord: the coordinator daemon. Wiring only: flags, data directory, log
// replay, runtime, the config centre (with --registry), gRPC server, signals.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cluster/config_centre.h"
#include "cluster/node_record.h"
#include "cluster/registry_connection.h"
#include "cluster/settings.h"
#include "common/config_file.h"
#include "common/failpoint.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "common/systemd_notify.h"
#include "common/tcp_listener.h"
#include "common/timer_queue.h"
#include "common/txid.h"
#include "common/vote_proof.h"
#include "coordinator/admin_service.h"
#include "coordinator/batching_participant_client.h"
#include "coordinator/console_assets.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/data_dir.h"
#include "coordinator/framed_participant_transport.h"
#include "coordinator/grpc_participant_transport.h"
#include "coordinator/ha/owned_space.h"
#include "coordinator/http_api.h"
#include "coordinator/runtime.h"
#include "coordinator/wal/log.h"
#include "rpc/daemon.h"
#include "rpc/daemon_flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "Address to serve gRPC on (host:port; port 0 picks a free port). Clients, agents and "
          "txctl connect here.");
ABSL_FLAG(std::string, data_dir, "",
          "Directory for the write-ahead log, the cluster id and the epoch (required; created if "
          "missing). Losing it loses the outcome of transactions still being committed.");
ABSL_FLAG(std::string, cluster_id, "",
          "Name of this coordinator in every txid ([A-Za-z0-9_-]). Default: the one stored in "
          "--data-dir, or a new random one on first start.");
ABSL_FLAG(absl::Duration, tx_timeout, absl::Seconds(30),
          "Default transaction deadline when Begin gives none: past it, an undecided transaction "
          "aborts.");
ABSL_FLAG(absl::Duration, prepare_timeout, absl::Seconds(5),
          "How long Commit waits for all votes before aborting the transaction.");
ABSL_FLAG(bool, signed_votes, true,
          "Give each agent that enlists a key to sign its early-prepared YES votes with, so "
          "that the client's Commit carries them and the agent sends no Enlist (one call less "
          "per branch; docs/protocol.md, \"Signed votes\"). The keys derive from a secret "
          "drawn at each start and never written down. false: votes come by Enlist only.");
ABSL_FLAG(bool, framed_participants, true,
          "Send Prepare, Commit, Abort and their batches to the framed port an agent's "
          "enlistment names (txagent --framed_listen; docs/protocol.md, \"The framed port\"), "
          "falling back to its gRPC endpoint when that fails. Never with TLS to the agents "
          "(--tls_ca): the framed port is plain TCP. false: gRPC only.");
ABSL_FLAG(bool, framed_enlists, true,
          "With --framed_listen, name the framed port in Enlist answers, so that agents without "
          "TLS to this coordinator send their next Enlists there (docs/protocol.md, \"The framed "
          "port\"). false: agents enlist over gRPC only.");
ABSL_FLAG(absl::Duration, phase2_retry_max, absl::Seconds(5),
          "Longest wait between retries of a phase-2 Commit to an unreachable participant "
          "(retries never stop).");
ABSL_FLAG(uint64_t, wal_segment_bytes, 64ull << 20,
          "Rotate WAL segments past this size; a checkpoint then lets older segments go.");
ABSL_FLAG(uint64_t, wal_preallocate_bytes, 256ull << 10,
          "Keep at least half this many zero bytes written ahead of the WAL's appends, topped "
          "up after a batch once less is left, so that a commit's fdatasync need not also make "
          "a new file size durable (a journal commit or an inode write). Each top-up writes and "
          "syncs up to "
          "this many bytes, holding the log for that long (about 3 ms per MiB on a virtual disk). "
          "0: every batch extends the file.");
ABSL_FLAG(absl::Duration, outcome_retention, absl::Hours(24),
          "How long the outcome of a committed transaction is kept after it ends, across "
          "restarts: within it, Commit and GetTransaction answer COMMITTED or ABORTED for any "
          "txid of this coordinator; past it, OUT_OF_RANGE (outcome expired). Costs one bit per "
          "txid issued in the window.");
ABSL_FLAG(uint64_t, outcome_retention_max_bytes, 16ull << 20,
          "Memory bound on the retained outcomes (also copied into each WAL checkpoint): past "
          "it the oldest go even inside --outcome_retention. 16 MiB holds 134 million txids.");
ABSL_FLAG(std::string, failpoints, "",
          "For crash tests only: failpoints to arm, e.g. \"after-commit-logged=crash\" (see "
          "common/failpoint.h). Also read from TXCOORD_FAILPOINTS.");
ABSL_FLAG(std::string, coordinator_clients, "",
          "Under mutual TLS: comma-separated identities (certificate CN or DNS name) of the "
          "services that may Begin, Commit, Abort and GetTransaction (the service role). "
          "Unset: any certificate the CA signed (logged as a WARNING at start).");
ABSL_FLAG(std::string, agent_identities, "",
          "Under mutual TLS: participant=identity,... binding each participant name to the "
          "agent certificate allowed to Enlist, EnlistBatch and QueryOutcome for it (a name may "
          "be given twice). Unset: any certificate the CA signed, under any name (logged as a "
          "WARNING at start).");
ABSL_FLAG(std::string, advertise, "",
          "Address clients and agents should call this coordinator on, as registered in etcd "
          "with --registry. Default: the bound --listen address.");
ABSL_FLAG(std::string, registry_service, txcoord::cluster::kDefaultCoordinatorService,
          "With --registry: the coordinator group this coordinator serves in (clients balance "
          "their Begins across the coordinators of one group), and the service whose settings "
          "it reads from etcd (docs/cluster.md).");
ABSL_FLAG(std::string, log, "wal",
          "Where decisions are logged: \"wal\", the write-ahead log in --data_dir (one "
          "machine), or \"etcd\", the etcd of --registry (docs/ha.md): this process then "
          "owns the txid space --cluster_id while it holds a lease there, or waits as a "
          "standby and takes the space over when its owner is lost.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log level printed: debug, info, warning, error.");

namespace txcoord::coordinator {
namespace {

int Run() {
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "txcoord: --log_level must be debug, info, warning or error\n");
    return 2;
  }
  SetMinLogLevel(level);
  SetLogTag("txcoord");
  absl::Status armed = ArmFailpointsFromEnvironment();
  if (armed.ok() && !absl::GetFlag(FLAGS_failpoints).empty())
    armed = ArmFailpoints(absl::GetFlag(FLAGS_failpoints));
  if (!armed.ok()) {
    TXLOG(ERROR) << "cannot start: " << armed;
    return 2;
  }

  RoleFlags roles;
  roles.services_flag = "--coordinator_clients";
  roles.services = absl::GetFlag(FLAGS_coordinator_clients);
  roles.agent_identities = absl::GetFlag(FLAGS_agent_identities);
  absl::StatusOr<DaemonSecurity> security = DaemonSecurityFromFlags("txcoord", roles);
  if (!security.ok()) {
    TXLOG(ERROR) << "cannot start: " << security.status();
    return 2;
  }

  // The checkpoint callback runs only after appends, which need the runtime.
  std::atomic<Runtime*> runtime_for_checkpoint{nullptr};
  MetricsRegistry metrics_registry;
  CoordinatorMetrics metrics(&metrics_registry);
  RetentionOptions retention;
  retention.retention = absl::GetFlag(FLAGS_outcome_retention);
  retention.max_bytes = absl::GetFlag(FLAGS_outcome_retention_max_bytes);
  if (retention.retention <= absl::ZeroDuration() ||
      retention.max_bytes < RetainedOutcomes::kChunkBytes) {
    TXLOG(ERROR) << "cannot start: --outcome_retention must be positive and "
                    "--outcome_retention_max_bytes at least "
                 << RetainedOutcomes::kChunkBytes;
    return 2;
  }
  RecoveryState recovery(retention, absl::Now());

  // The decision log: the WAL in --data_dir, or etcd once this process
  // owns its txid space there.
  const std::string log_kind = absl::GetFlag(FLAGS_log);
  std::string cluster_id;
  uint64_t epoch = 0;
  std::string log_where;
  wal::DecisionLog* decision_log = nullptr;
  std::unique_ptr<wal::Log> wal_log;
  std::unique_ptr<ha::OwnedSpace> ha;
  if (log_kind == "etcd") {
    const std::string advertise = absl::GetFlag(FLAGS_advertise);
    absl::StatusOr<std::unique_ptr<ha::OwnedSpace>> opened = ha::OwnedSpace::OpenFromFlags(
        absl::GetFlag(FLAGS_cluster_id),
        absl::StrCat("txcoord pid ", getpid(), " at ",
                     advertise.empty() ? absl::GetFlag(FLAGS_listen) : advertise),
        &recovery, &metrics_registry, ShutdownSignalPending);
    if (!opened.ok()) {
      if (absl::IsCancelled(opened.status())) {
        TXLOG(INFO) << "txcoord stopped (a standby; owned nothing)";
        return 0;
      }
      TXLOG(ERROR) << "cannot start: " << opened.status();
      return absl::IsInvalidArgument(opened.status()) ? 2 : 1;
    }
    ha = *std::move(opened);
    cluster_id = ha->space();
    epoch = ha->ownership().epoch;
    log_where = absl::StrCat("log=etcd ", ha->describe());
    decision_log = ha->log();
  } else if (log_kind == "wal") {
    absl::StatusOr<std::unique_ptr<DataDir>> dir =
        DataDir::Open(absl::GetFlag(FLAGS_data_dir), absl::GetFlag(FLAGS_cluster_id));
    if (!dir.ok()) {
      TXLOG(ERROR) << "cannot start: " << dir.status();
      return 1;
    }
    wal::LogOptions log_options;
    log_options.sync_observer = metrics.WalSyncObserver();
    log_options.dir = (*dir)->wal_dir();
    log_options.segment_bytes = absl::GetFlag(FLAGS_wal_segment_bytes);
    log_options.preallocate_bytes = absl::GetFlag(FLAGS_wal_preallocate_bytes);
    log_options.checkpoint = [&runtime_for_checkpoint]() {
      Runtime* runtime = runtime_for_checkpoint.load();
      return runtime ? runtime->CheckpointRecords() : std::vector<wal::Record>{};
    };
    if (retention.max_bytes > absl::GetFlag(FLAGS_wal_segment_bytes) / 4) {
      // Each checkpoint carries the bitmaps: one as large as a segment would
      // make every batch rotate.
      TXLOG(ERROR) << "cannot start: --outcome_retention_max_bytes (" << retention.max_bytes
                   << ") must be at most a quarter of --wal_segment_bytes ("
                   << absl::GetFlag(FLAGS_wal_segment_bytes) << ")";
      return 2;
    }
    absl::Status replay_status;
    absl::StatusOr<std::unique_ptr<wal::Log>> log =
        wal::Log::Open(log_options, [&](const wal::Record& record) {
          absl::Status s = recovery.Apply(record.type, record.payload);
          if (!s.ok() && replay_status.ok()) replay_status = s;
        });
    if (!log.ok() || !replay_status.ok()) {
      TXLOG(ERROR) << "cannot start: " << (log.ok() ? replay_status : log.status())
                   << " (inspect with: txctl wal check " << log_options.dir << ")";
      return 1;
    }
    wal_log = *std::move(log);
    decision_log = wal_log.get();
    cluster_id = (*dir)->cluster_id();
    epoch = (*dir)->epoch();
    log_where = absl::StrCat("data-dir=", (*dir)->path());
  } else {
    TXLOG(ERROR) << "cannot start: --log must be wal or etcd, not \"" << log_kind << "\"";
    return 2;
  }

  RuntimeOptions options;
  options.engine.cluster_id = cluster_id;
  options.engine.epoch = epoch;
  options.engine.default_tx_timeout = absl::GetFlag(FLAGS_tx_timeout);
  options.engine.prepare_timeout = absl::GetFlag(FLAGS_prepare_timeout);
  options.engine.phase2_backoff_max = absl::GetFlag(FLAGS_phase2_retry_max);
  options.engine.random_seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  options.engine.retention = retention;
  options.on_commit_returned = metrics.CommitObserver();
  if (absl::GetFlag(FLAGS_signed_votes)) options.vote_secret = NewVoteSecret();

  // Deliberately never destroyed: gRPC callbacks and timers may still refer
  // to these while the process exits (see the end of Run).
  auto* timers = new TimerQueue();
  auto* grpc_transport = new GrpcParticipantTransport(security->channel_credentials);
  ParticipantTransport* transport = grpc_transport;
  FramedParticipantTransport* framed_transport = nullptr;
  // Plain TCP only where gRPC to the agents is plain too.
  if (absl::GetFlag(FLAGS_framed_participants) && security->channel_credentials == nullptr) {
    framed_transport = new FramedParticipantTransport(grpc_transport);
    transport = framed_transport;
  }
  auto* participants = new BatchingParticipantClient(transport, RealClock());
  auto* runtime = new Runtime(options, decision_log, participants, timers);
  runtime_for_checkpoint = runtime;
  if (absl::Status recovered = runtime->Recover(recovery); !recovered.ok()) {
    TXLOG(ERROR) << "cannot start: " << recovered;
    return 1;
  }
  metrics.Watch(runtime);
  metrics.WatchParticipants(participants);
  if (framed_transport != nullptr) metrics.WatchFramedParticipants(framed_transport);
  if (wal_log != nullptr) metrics.WatchLog(wal_log.get());
  CountRefusals(security->server.access_policy.get(), &metrics_registry);
  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics_server =
      StartMetricsFromFlags("txcoord", &metrics_registry);
  if (!metrics_server.ok()) {
    TXLOG(ERROR) << "cannot start: " << metrics_server.status();
    return 1;
  }

  // With --registry, the policy in etcd replaces the flags before the first
  // request is served, and follows etcd from then on.
  absl::StatusOr<std::unique_ptr<cluster::ConfigCentre>> config =
      cluster::ConfigCentre::StartFromFlags(
          cluster::SettingRole::kCoordinator, absl::GetFlag(FLAGS_registry_service),
          [runtime](const std::string& setting, const cluster::SettingValue& value) {
            if (absl::Status applied = ApplyCoordinatorSetting(runtime, setting, value);
                !applied.ok()) {
              TXLOG(ERROR) << "config: " << setting << " not applied: " << applied;
            }
          },
          &metrics_registry, "txcoord");
  if (!config.ok()) {
    TXLOG(ERROR) << "cannot start: " << config.status();
    return 1;
  }

  CoordinatorService service(runtime, security->server.access_policy.get());
  if (framed_transport != nullptr) {
    service.OnFramedEndpoint(
        [framed_transport](const std::string& endpoint, const std::string& framed) {
          framed_transport->NoteFramedEndpoint(endpoint, framed);
        });
  }
  AdminService admin_service(runtime, security->server.access_policy.get());
  InflightTracker inflight;
  ServerOptions server_options = security->server;
  server_options.inflight = &inflight;
  // A refused --framed_listen stops the start before anything serves.
  if (absl::Status framed = CheckFramedFlags("txcoord", *security); !framed.ok()) {
    TXLOG(ERROR) << "cannot start: " << framed;
    return 1;
  }
  absl::StatusOr<ServerHandle> server = StartServer("txcoord", absl::GetFlag(FLAGS_listen),
                                                    {&service, &admin_service}, server_options);
  if (!server.ok()) {
    TXLOG(ERROR) << "cannot start: " << server.status();
    return 1;
  }
  absl::StatusOr<std::shared_ptr<FrameServer>> framed_port =
      StartFramedFromFlags("txcoord", *security, service.FramedCalls(&inflight), &metrics_registry);
  if (!framed_port.ok()) {
    TXLOG(ERROR) << "cannot start: " << framed_port.status();
    return 1;
  }
  // Enlist answers name the framed port from now on, for the agents' next
  // Enlists (not one bound to loopback while agents reach txcoord
  // elsewhere: they would dial their own host).
  if (*framed_port != nullptr && absl::GetFlag(FLAGS_framed_enlists)) {
    const std::string advertised = absl::GetFlag(FLAGS_advertise);
    service.set_framed_endpoint(
        ReachableAt((*framed_port)->address(), advertised.empty() ? server->address : advertised));
  }
  // Cluster mode: HTTP calls on another coordinator's txid are redirected
  // to its HTTP port, found in the registry (set once discovery runs).
  static std::atomic<cluster::Discovery*> peers{nullptr};
  static std::atomic<bool> https{false};
  const std::string self = cluster_id;
  auto owner_http = [self](const std::string& txid) -> std::string {
    cluster::Discovery* discovery = peers.load();
    absl::StatusOr<Txid> parsed = ParseTxid(txid);
    if (discovery == nullptr || !parsed.ok() || parsed->cluster == self) return "";
    absl::StatusOr<cluster::NodeRecord> owner = discovery->Coordinator(parsed->cluster);
    if (!owner.ok() || owner->http_endpoint.empty()) return "";
    return absl::StrCat(https.load() ? "https://" : "http://", owner->http_endpoint);
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      StartHttpFromFlags("txcoord",
                         CoordinatorHttpRoutes(
                             server->server->InProcessChannel(grpc::ChannelArguments()),
                             [&metrics_registry] { return metrics_registry.Render(); }, owner_http),
                         *security, ConsoleAssets());
  if (!http.ok()) {
    TXLOG(ERROR) << "cannot start: " << http.status();
    return 1;
  }
  // With --registry: in etcd now, so that clients start sending Begins.
  const std::string advertise = absl::GetFlag(FLAGS_advertise);
  absl::StatusOr<cluster::NodeRecord> record = cluster::SelfRecord(
      cluster::kCoordinatorRole, absl::GetFlag(FLAGS_registry_service), cluster_id,
      advertise.empty() ? server->address : advertise, *http != nullptr ? (*http)->address() : "");
  if (!record.ok()) {
    TXLOG(ERROR) << "cannot start: " << record.status();
    return 2;
  }
  // Owning a txid space on etcd, the record is written under its fence.
  std::unique_ptr<cluster::RegistryConnection> own_registry;
  cluster::RegistryConnection* registry = nullptr;
  if (ha != nullptr) {
    if (absl::Status registered = ha->Register(*record, &metrics_registry); !registered.ok()) {
      TXLOG(ERROR) << "cannot start: " << registered;
      return 1;
    }
    registry = ha->registry();
  } else {
    absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> registered =
        cluster::RegisterFromFlags(*record, &metrics_registry);
    if (!registered.ok()) {
      TXLOG(ERROR) << "cannot start: " << registered.status();
      return 1;
    }
    own_registry = *std::move(registered);
    registry = own_registry.get();
  }
  if (registry != nullptr) {
    absl::StatusOr<cluster::Discovery*> discovery = registry->StartDiscovery();
    if (!discovery.ok()) {
      TXLOG(ERROR) << "cannot start: " << discovery.status();
      return 1;
    }
    (*discovery)->AddMetrics(&metrics_registry);
    if (*http != nullptr) https = (*http)->tls();
    peers = *discovery;
    TXLOG(INFO) << "registered in etcd as " << registry->registrar()->key() << " (weight "
                << record->weight << ", lease TTL " << absl::FormatDuration(registry->options().ttl)
                << ")";
  }
  TXLOG(INFO) << "txcoord serving on " << server->address << ": cluster=" << cluster_id
              << " epoch=" << epoch << " " << log_where << " recovered "
              << recovery.unfinished().size() << " committing and " << recovery.one_phase().size()
              << " one-phase transaction(s); outcomes retained for "
              << absl::FormatDuration(retention.retention) << " ("
              << recovery.outcomes().committed_count() << " committed txids kept); signed votes "
              << (options.vote_secret.empty() ? "off" : "on");

  if (absl::Status notified = NotifySystemd("READY=1"); !notified.ok()) {
    TXLOG(WARNING) << notified;
  }

  const int sig = WaitForShutdownSignal();
  (void)NotifySystemd("STOPPING=1");
  TXLOG(INFO) << "signal " << sig << ": refusing new work, finishing in-flight calls";
  // Draining in the registry first: clients stop picking this coordinator
  // for Begin, while calls on its txids still find it until it is gone.
  if (registry != nullptr) registry->Drain();
  if (*http != nullptr) (*http)->Stop();
  runtime->StopAccepting();
  if (*framed_port != nullptr && !(*framed_port)->Stop(absl::Now() + absl::Seconds(5))) {
    TXLOG(WARNING) << "framed-port calls still running after 5s; stopping anyway";
  }
  if (!DrainServer(*server, inflight, absl::Seconds(5))) {
    TXLOG(WARNING) << "calls still in flight after 5s; stopping anyway";
  }
  if (registry != nullptr) registry->Deregister();
  config->reset();  // no setting applied past here
  runtime->Halt();
  wal_log.reset();  // flushes queued END records, stops the writer thread
  // Flushes queued END records, then frees the space for a standby at once.
  if (ha != nullptr) ha->Close();
  TXLOG(INFO) << "txcoord stopped (" << runtime->open_transactions()
              << " transaction(s) open; committed ones resume from the log on restart)";
  // The runtime, timers and channels are left to the exit: late gRPC
  // callbacks may still touch them (and do nothing, the runtime is halted).
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace
}  // namespace txcoord::coordinator

int main(int argc, char** argv) {
  txcoord::BlockShutdownSignals();
  txcoord::DisableMutexDeadlockDetection();
  txcoord::NormalizeFlagNames(argc, argv);
  txcoord::SetFlagUsage(
      "txcoord: the txcoord transaction coordinator (two-phase commit over gRPC).\n"
      "Usage: txcoord --data-dir=DIR [--listen=127.0.0.1:7070] [flags]\n"
      "Flags may be written --data-dir or --data_dir, and read from --config=FILE.");
  if (absl::Status config = txcoord::ApplyConfigFileFromArgs(argc, argv); !config.ok()) {
    std::fprintf(stderr, "txcoord: cannot start: %s\n", std::string(config.message()).c_str());
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  return txcoord::coordinator::Run();
}
