// What deciding in etcd costs and what it buys, in one run against real
// daemons: the plain 2PC transfer workload (3 agents) with the coordinator's
// decision log in the local WAL (--log=wal) and in a three-member etcd on
// this machine (--log=etcd), point by point side by side, each read against
// the floors measured in the same run (fsync, gRPC round trip, one etcd
// write); then the owner of the etcd space is killed with kill -9 again and
// again under load, and the time until its standby has taken over is
// measured step by step.
//
//   ha_bench                                  # 1 and 16 clients, 5 takeovers, ~75 s
//   ha_bench --seconds=30 --json_out=ha.json  # longer points
//   ha_bench --smoke                          # a few seconds (make test)
//
// See docs/benchmarks.md ("Failover on etcd") and docs/ha.md.
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/etcd_floor.h"
#include "bench/floors.h"
#include "bench/ha_report.h"
#include "bench/proc_stats.h"
#include "bench/takeover.h"
#include "bench/txn_workload.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "cluster/etcd_client.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/daemon_process.h"
#include "harness/etcd_server.h"
#include "harness/temp_dir.h"

ABSL_FLAG(bool, smoke, false,
          "Prove the benchmark works in a few seconds (what make test runs): short points at 1 "
          "and 4 clients, short floors, two takeovers. Its numbers mean nothing.");
ABSL_FLAG(std::vector<std::string>, clients, (std::vector<std::string>{"1", "16"}),
          "Client counts to run plain 2PC over 3 agents at, each with the WAL and with etcd.");
ABSL_FLAG(double, seconds, 10, "Measured time of each point, after --warmup.");
ABSL_FLAG(double, warmup, 2, "Time each point runs before it is measured.");
ABSL_FLAG(int, rounds, 5, "Times the owner of the etcd space is killed; 0 skips the takeovers.");
ABSL_FLAG(int, takeover_clients, 8, "Client threads running while the owner is killed.");
ABSL_FLAG(absl::Duration, ttl, absl::Seconds(2),
          "--registry_ttl of the coordinators on etcd (at least 2s): bounds how long a dead "
          "owner keeps its space.");
ABSL_FLAG(int, etcd_members, 3, "Members of the etcd cluster, all on this machine.");
ABSL_FLAG(std::string, dir, "",
          "Directory on the disk to measure: etcd's members, the daemons' data and the fsync "
          "floor file go in a fresh subdirectory, removed afterwards (unless --keep). Default: "
          "$TMPDIR or /tmp.");
ABSL_FLAG(bool, keep, false, "Keep the data directory (daemon and etcd logs, databases).");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON to this file.");
ABSL_FLAG(std::string, commit, "",
          "Label of the source tree measured (e.g. `git describe --always --dirty`).");
ABSL_FLAG(std::string, daemon_log_level, "warning",
          "--log_level of the daemons measured (standbys log at info: they announce that they "
          "wait at that level).");

namespace txcoord::bench {
namespace {

constexpr char kSpace[] = "c1";
constexpr int kAgents = 3;
constexpr int kRowsPerClient = 64;
constexpr int kFsyncRecordBytes = 137;  // a COMMIT record of three branches, framed
constexpr int kEtcdValueBytes = 137;
constexpr char kFloorKeys[] = "/ha_bench/floor/";

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

int Fail(const absl::Status& status, const std::string& what) {
  std::fprintf(stderr, "ha_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

// A coordinator and three agents, with the clients the workload needs.
struct Deployment {
  std::string log;  // "wal" or "etcd"
  std::unique_ptr<testing::Cluster> cluster;
  std::unique_ptr<Client> coordinator;
  std::vector<std::unique_ptr<AgentClient>> agents;
  Targets targets;
};

absl::StatusOr<std::unique_ptr<Deployment>> Deploy(const std::string& log,
                                                   testing::ClusterOptions options,
                                                   int max_clients) {
  auto d = std::make_unique<Deployment>();
  d->log = log;
  absl::StatusOr<std::unique_ptr<testing::Cluster>> cluster =
      testing::Cluster::Start(std::move(options));
  if (!cluster.ok()) return cluster.status();
  d->cluster = *std::move(cluster);
  d->coordinator = std::make_unique<Client>(d->cluster->coordinator_address());
  d->targets.coordinator = d->coordinator.get();
  d->targets.coordinator_pid = d->cluster->coordinator()->pid();
  d->targets.rows_per_client = kRowsPerClient;
  d->targets.floor_dir = d->cluster->dir();
  d->targets.fsync_record_bytes = kFsyncRecordBytes;
  for (int i = 0; i < kAgents; ++i) {
    d->agents.push_back(std::make_unique<AgentClient>(d->cluster->agent_address(i)));
    d->targets.agents.push_back(d->agents.back().get());
    d->targets.agent_pids.push_back(d->cluster->agent(i)->pid());
  }
  if (absl::Status s = CreateAccounts(d->targets.agents, max_clients, kRowsPerClient); !s.ok()) {
    return s;
  }
  return d;
}

// The idle floors at one moment: the disk, each coordinator, etcd.
struct FloorSamples {
  std::vector<Clock::duration> fsync;
  std::vector<std::vector<Clock::duration>> rtt;  // per deployment
  EtcdRoundTrips etcd;
};

absl::StatusOr<FloorSamples> MeasureFloors(const std::string& dir,
                                           const std::vector<Deployment*>& deployments,
                                           cluster::Etcd* etcd, double seconds) {
  FloorSamples floor;
  absl::StatusOr<std::vector<Clock::duration>> fsync =
      MeasureFsync(dir, kFsyncRecordBytes, Seconds(seconds * 0.4));
  if (!fsync.ok()) return fsync.status();
  floor.fsync = *std::move(fsync);
  for (Deployment* d : deployments) {
    absl::StatusOr<std::vector<Clock::duration>> rtt = MeasureGrpcRoundTrip(
        d->cluster->coordinator_address(), Seconds(seconds * 0.2 / deployments.size()));
    if (!rtt.ok()) return rtt.status();
    floor.rtt.push_back(*std::move(rtt));
  }
  absl::StatusOr<EtcdRoundTrips> trips =
      MeasureEtcdRoundTrips(etcd, kFloorKeys, kEtcdValueBytes, Seconds(seconds * 0.4));
  if (!trips.ok()) return trips.status();
  floor.etcd = *std::move(trips);
  return floor;
}

double CpuSecondsOf(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t pid : pids) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(pid);
    if (cpu.ok()) total += *cpu;
  }
  return total;
}

template <typename T>
std::vector<T> Concat(std::vector<T> a, const std::vector<T>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The standbys of the takeover part, and the space's first owner.
class SpaceProcesses final {
 public:
  SpaceProcesses(testing::Cluster* cluster, std::string dir, std::vector<std::string> flags)
      : cluster_(cluster), dir_(std::move(dir)), flags_(std::move(flags)) {}

  absl::Status StartStandby() {
    absl::StatusOr<std::string> binary = testing::CoordinatorBinary();
    if (!binary.ok()) return binary.status();
    const size_t n = standbys_.size();
    testing::DaemonOptions daemon;
    daemon.binary = *binary;
    daemon.args = {"--listen=127.0.0.1:0", absl::StrCat("--data-dir=", dir_, "/standby", n),
                   absl::StrCat("--cluster-id=", kSpace), "--log_level=info"};
    daemon.args.insert(daemon.args.end(), flags_.begin(), flags_.end());
    daemon.log_path = absl::StrCat(dir_, "/standby", n, ".log");
    daemon.ready_log_text = "standby: ";
    absl::StatusOr<std::unique_ptr<testing::DaemonProcess>> process =
        testing::DaemonProcess::Start(daemon);
    if (!process.ok()) return process.status();
    standbys_.push_back(*std::move(process));
    return absl::OkStatus();
  }

  absl::Status Kill(int64_t pid) {
    if (cluster_->coordinator(0) != nullptr && cluster_->coordinator(0)->pid() == pid) {
      return cluster_->KillCoordinator(0);
    }
    for (auto& standby : standbys_) {
      if (standby->pid() == pid) return standby->Kill9();
    }
    return absl::FailedPreconditionError(
        absl::StrCat("pid ", pid, " is none of space ", kSpace, "'s coordinator processes"));
  }

 private:
  testing::Cluster* const cluster_;
  const std::string dir_;
  const std::vector<std::string> flags_;
  std::vector<std::unique_ptr<testing::DaemonProcess>> standbys_;
};

int Run(int argc, char** argv) {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  std::vector<int> client_counts;
  for (const std::string& text :
       smoke ? std::vector<std::string>{"1", "4"} : absl::GetFlag(FLAGS_clients)) {
    int clients = 0;
    if (!absl::SimpleAtoi(text, &clients) || clients < 1) {
      std::fprintf(stderr, "ha_bench: bad --clients entry \"%s\"\n", text.c_str());
      return 2;
    }
    client_counts.push_back(clients);
  }
  const absl::Duration ttl = absl::GetFlag(FLAGS_ttl);
  if (ttl < absl::Seconds(2)) {
    std::fprintf(stderr, "ha_bench: --ttl must be at least 2s\n");
    return 2;
  }
  const int takeover_clients = absl::GetFlag(FLAGS_takeover_clients);
  int max_clients = takeover_clients;
  for (int clients : client_counts) max_clients = std::max(max_clients, clients);

  HaReport report;
  const absl::Time started = absl::Now();
  report.started_utc = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", started, absl::UTCTimeZone());
  report.commit = absl::GetFlag(FLAGS_commit).empty() ? "unknown" : absl::GetFlag(FLAGS_commit);
  report.flags = absl::StrJoin(std::vector<std::string>(argv + 1, argv + argc), " ");
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  report.host = host;
  utsname uts{};
  if (uname(&uts) == 0) report.kernel = uts.release;
  report.cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  report.smoke = smoke;
  report.warmup_seconds = smoke ? 0.2 : absl::GetFlag(FLAGS_warmup);
  report.point_seconds = smoke ? 0.5 : absl::GetFlag(FLAGS_seconds);
  report.etcd_members = absl::GetFlag(FLAGS_etcd_members);
  report.registry_ttl_seconds = absl::ToDoubleSeconds(ttl);
  report.fsync_record_bytes = kFsyncRecordBytes;
  report.etcd_value_bytes = kEtcdValueBytes;
  report.takeover_clients = takeover_clients;
  const int rounds = smoke ? std::min(2, absl::GetFlag(FLAGS_rounds)) : absl::GetFlag(FLAGS_rounds);
  const double floor_seconds = smoke ? 0.2 : 1.5;

  // Everything on one disk: etcd's members, both deployments, the floor.
  std::optional<testing::TempDir> temp_dir;
  std::string dir;
  if (!absl::GetFlag(FLAGS_dir).empty()) {
    std::string templ = absl::StrCat(absl::GetFlag(FLAGS_dir), "/ha_bench.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror(("ha_bench: mkdtemp " + templ).c_str());
      return 1;
    }
    dir = templ;
  } else {
    absl::StatusOr<testing::TempDir> created = testing::TempDir::Create("ha_bench");
    if (!created.ok()) return Fail(created.status(), "creating the data directory");
    temp_dir.emplace(*std::move(created));
    if (absl::GetFlag(FLAGS_keep)) temp_dir->Keep();
    dir = temp_dir->path();
  }
  report.dir = dir;

  testing::EtcdServerOptions etcd_options;
  etcd_options.members = report.etcd_members;
  etcd_options.dir = dir + "/etcd";
  absl::StatusOr<std::unique_ptr<testing::EtcdServer>> etcd =
      testing::EtcdServer::Create(etcd_options);
  if (!etcd.ok()) return Fail(etcd.status(), "starting etcd");
  cluster::EtcdClientOptions etcd_client_options;
  etcd_client_options.endpoints = (*etcd)->endpoints();
  cluster::EtcdClient etcd_client(etcd_client_options);
  const std::vector<pid_t> etcd_pids = ChildProcesses("etcd");
  if (etcd_pids.size() != static_cast<size_t>(report.etcd_members)) {
    return Fail(absl::InternalError(absl::StrCat("found ", etcd_pids.size(), " etcd processes")),
                "counting etcd's members");
  }

  const std::string level = "--log_level=" + absl::GetFlag(FLAGS_daemon_log_level);
  const std::string registry = "--registry=" + (*etcd)->registry_url();
  const std::string ttl_flag = absl::StrCat("--registry_ttl=", absl::FormatDuration(ttl));
  const std::vector<std::string> etcd_log_flags = {"--log=etcd", registry, ttl_flag};

  testing::ClusterOptions wal_options;
  wal_options.dir = dir + "/wal";
  wal_options.agents = kAgents;
  wal_options.coordinator_flags = {level, "--log=wal"};
  wal_options.agent_flags = {level};
  absl::StatusOr<std::unique_ptr<Deployment>> wal = Deploy("wal", wal_options, max_clients);
  if (!wal.ok()) return Fail(wal.status(), "starting the deployment with --log=wal");

  testing::ClusterOptions etcd_log_options;
  etcd_log_options.dir = dir + "/etcd-log";
  etcd_log_options.agents = kAgents;
  etcd_log_options.coordinator_ids = {kSpace};
  etcd_log_options.coordinator_flags = {level};
  etcd_log_options.per_coordinator_flags = {etcd_log_flags};
  // The agents find the space's owner through the registry (after a
  // takeover it listens elsewhere); a branch whose coordinator died before
  // hearing of it is rolled back after 2 s idle.
  etcd_log_options.agent_flags = {level, registry, ttl_flag, "--lock_timeout=500ms",
                                  "--branch_idle_timeout=2s"};
  absl::StatusOr<std::unique_ptr<Deployment>> on_etcd =
      Deploy("etcd", etcd_log_options, max_clients);
  if (!on_etcd.ok()) return Fail(on_etcd.status(), "starting the deployment with --log=etcd");
  const std::vector<Deployment*> deployments = {wal->get(), on_etcd->get()};

  report.load_before = LoadAverage();
  std::printf(
      "ha_bench: plain 2PC over %d agents at %s client(s), wal and etcd (%d members), "
      "data in %s\n",
      kAgents, absl::StrJoin(client_counts, ",").c_str(), report.etcd_members, dir.c_str());
  PrintHaPointHeader(stdout);
  std::fflush(stdout);

  auto measure_floors = [&] {
    return MeasureFloors(dir, deployments, &etcd_client, floor_seconds);
  };
  absl::StatusOr<FloorSamples> before = measure_floors();
  if (!before.ok()) return Fail(before.status(), "measuring the floors");
  FloorSamples all;
  all.rtt.resize(deployments.size());
  bool failures = false;
  for (int clients : client_counts) {
    for (size_t i = 0; i < deployments.size(); ++i) {
      Deployment* d = deployments[i];
      const Point point{Mode::kTwoPhase, kAgents, clients};
      absl::StatusOr<cluster::RangeResult> revision_before = etcd_client.Get(kFloorKeys);
      if (!revision_before.ok()) return Fail(revision_before.status(), "reading etcd");
      const double etcd_cpu_before = CpuSecondsOf(etcd_pids);
      const Clock::time_point point_start = Clock::now();
      absl::StatusOr<PointResult> result = RunPoint(
          d->targets, point, Seconds(report.warmup_seconds), Seconds(report.point_seconds));
      if (!result.ok()) {
        return Fail(result.status(), absl::StrCat(d->log, " at ", clients, " clients"));
      }
      const double point_wall = std::chrono::duration<double>(Clock::now() - point_start).count();
      const double etcd_cpu = CpuSecondsOf(etcd_pids) - etcd_cpu_before;
      absl::StatusOr<cluster::RangeResult> revision_after = etcd_client.Get(kFloorKeys);
      if (!revision_after.ok()) return Fail(revision_after.status(), "reading etcd");
      absl::StatusOr<FloorSamples> after = measure_floors();
      if (!after.ok()) return Fail(after.status(), "measuring the floors");
      LogPoint log_point;
      const double transactions = result->tx_per_second() * point_wall;
      log_point.etcd_cpu_ms_per_tx = transactions > 0 ? etcd_cpu * 1000 / transactions : 0;
      log_point.etcd_writes_per_tx =
          transactions > 0
              ? static_cast<double>(revision_after->revision - revision_before->revision) /
                    transactions
              : 0;
      log_point.log = d->log;
      log_point.result = *std::move(result);
      log_point.rtt = Summarize(Concat(before->rtt[i], after->rtt[i]));
      log_point.etcd_txn = Summarize(Concat(before->etcd.txn, after->etcd.txn));
      log_point.etcd_read = Summarize(Concat(before->etcd.read, after->etcd.read));
      all.fsync = Concat(std::move(all.fsync), before->fsync);
      for (size_t j = 0; j < deployments.size(); ++j) {
        all.rtt[j] = Concat(std::move(all.rtt[j]), before->rtt[j]);
      }
      all.etcd.txn = Concat(std::move(all.etcd.txn), before->etcd.txn);
      all.etcd.read = Concat(std::move(all.etcd.read), before->etcd.read);
      before = *std::move(after);
      if (log_point.result.failed > 0 || log_point.result.committed == 0) failures = true;
      PrintHaPoint(report, log_point, stdout);
      std::fflush(stdout);
      report.points.push_back(std::move(log_point));
    }
  }
  all.fsync = Concat(std::move(all.fsync), before->fsync);
  all.etcd.txn = Concat(std::move(all.etcd.txn), before->etcd.txn);
  all.etcd.read = Concat(std::move(all.etcd.read), before->etcd.read);
  std::vector<Clock::duration> all_rtt;
  for (size_t j = 0; j < deployments.size(); ++j) {
    all_rtt = Concat(std::move(all_rtt), Concat(all.rtt[j], before->rtt[j]));
  }
  report.fsync = Summarize(std::move(all.fsync));
  report.rtt = Summarize(std::move(all_rtt));
  report.etcd_txn = Summarize(std::move(all.etcd.txn));
  report.etcd_read = Summarize(std::move(all.etcd.read));
  if (absl::Status running = (*wal)->cluster->CheckRunning(); !running.ok()) {
    return Fail(running, "a daemon died");
  }
  // The WAL deployment is done: its idle daemons would only share the CPUs.
  (*wal)->cluster.reset();

  if (rounds > 0) {
    std::printf("\ntakeovers: %d kill -9 of the owner of %s, %d clients running\n", rounds, kSpace,
                takeover_clients);
    std::fflush(stdout);
    std::vector<std::string> standby_flags = etcd_log_flags;
    SpaceProcesses space((*on_etcd)->cluster.get(), dir + "/etcd-log", standby_flags);
    if (absl::Status s = space.StartStandby(); !s.ok()) return Fail(s, "starting a standby");
    TakeoverSetup setup;
    setup.registry_url = (*etcd)->registry_url();
    setup.space = kSpace;
    setup.agents = (*on_etcd)->targets.agents;
    setup.clients = takeover_clients;
    setup.rows_per_client = kRowsPerClient;
    setup.commits_before_kill = smoke ? 5 : 100;
    setup.round_timeout = ttl + absl::Seconds(30);
    setup.kill = [&space](int64_t pid) { return space.Kill(pid); };
    setup.start_standby = [&space] { return space.StartStandby(); };
    absl::StatusOr<TakeoverResult> takeover = MeasureTakeovers(setup, rounds);
    if (!takeover.ok()) {
      if (temp_dir.has_value()) temp_dir->Keep();
      std::fprintf(stderr, "ha_bench: data kept in %s\n", dir.c_str());
      return Fail(takeover.status(), "measuring the takeover");
    }
    report.takeover = *std::move(takeover);
  }
  report.load_after = LoadAverage();
  report.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);

  std::printf("\n");
  PrintHaReport(report, stdout);
  if (!absl::GetFlag(FLAGS_json_out).empty()) {
    if (absl::Status s = WriteHaJson(report, absl::GetFlag(FLAGS_json_out)); !s.ok()) {
      return Fail(s, "writing the JSON");
    }
    std::printf("json: %s\n", absl::GetFlag(FLAGS_json_out).c_str());
  }
  on_etcd->reset();
  etcd->reset();
  if (!temp_dir.has_value() && !absl::GetFlag(FLAGS_keep)) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  if (failures) {
    std::fprintf(stderr, "ha_bench: some transactions failed or a point committed none\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "commit latency and throughput of plain 2PC transfers with the coordinator's decision\n"
      "log in the local WAL and in a three-member etcd on this machine, in one run, against\n"
      "the floors measured in that run (fsync, gRPC RTT, one etcd write); then the time from\n"
      "kill -9 of the owner of a txid space on etcd until its standby drives its transactions.\n"
      "The daemons are the ones built next to this binary, or $TXCOORD_BIN/$TXAGENT_BIN; etcd\n"
      "from $ETCD_BIN or $PATH.\n"
      "Usage: ha_bench [--clients=1,16] [--seconds=10] [--rounds=5] [--json_out=FILE] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  txcoord::SetMinLogLevel(txcoord::LogLevel::kWarning);  // discovery's notes would split the table
  return txcoord::bench::Run(argc, argv);
}
