// End-to-end commit benchmark: a real coordinator and real agents (separate
// processes on loopback, data on disk), closed-loop clients running
// transfers across B services (Begin, one Execute per service, Commit), and
// every latency read against the floor measured in the same run on the same
// disk: a small append + fdatasync, and a gRPC unary round trip (RTT).
//
//   txn_bench                                   # the documented matrix, ~6 min
//   txn_bench --points=2pc:3:16 --seconds=30    # one point
//   txn_bench --smoke                           # a few seconds (make test)
//
// See docs/benchmarks.md for the matrix, the floors and how to read them.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/floors.h"
#include "bench/open_txn_memory.h"
#include "bench/proc_stats.h"
#include "bench/txn_report.h"
#include "bench/txn_workload.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "common/flag_usage.h"
#include "harness/cluster.h"

ABSL_FLAG(bool, smoke, false,
          "Prove the benchmark works in a few seconds (what make test runs): three short points, "
          "short floors, a small memory probe. Its numbers mean nothing.");
ABSL_FLAG(std::vector<std::string>, points, {},
          "Comma-separated points MODE:BRANCHES:CLIENTS to run instead of the default matrix, "
          "e.g. 2pc:3:16,early:3:16. MODE is 2pc (plain two-phase commit, 2+ branches), early "
          "(every Execute with prepare=true) or 1pc (one branch: one-phase commit).");
ABSL_FLAG(double, seconds, 15, "Measured time of each point, after --warmup.");
ABSL_FLAG(double, warmup, 2, "Time each point runs before it is measured (connections, caches).");
ABSL_FLAG(int, agents, 0,
          "Agents to start; 0 means the most branches any point needs. Points use agents 0..B-1.");
ABSL_FLAG(int, rows_per_client, 64,
          "Rows each client owns at every agent and updates in turn (no two transactions ever "
          "touch the same row at once).");
ABSL_FLAG(std::string, dir, "",
          "Directory on the disk to measure: the daemons' data, logs and the fsync floor file go "
          "in a fresh subdirectory, removed afterwards (unless --keep). Default: $TMPDIR or /tmp.");
ABSL_FLAG(bool, branches_at_once, false,
          "Send a transaction's Executes to its agents at once (Transaction::ExecuteAll), as a "
          "client that runs its branches concurrently does, instead of one after another.");
ABSL_FLAG(bool, name_branches, true,
          "Commit names the transaction's branches, so agents answer Execute without waiting for "
          "the coordinator to acknowledge each branch (what Transaction does); false: every "
          "Execute waits for its enlistment, as a client that names nothing.");
ABSL_FLAG(uint32_t, reserve_txids, 0,
          "Txids the client reserves at a time (ClientOptions::reserve_txids): transactions then "
          "make no Begin call and begin at their first Enlist or Commit. 0: every transaction "
          "calls Begin.");
ABSL_FLAG(bool, framed_ports, false,
          "Start the daemons with framed ports (--framed_listen) and send every Execute and "
          "Commit on them (AgentClientOptions and ClientOptions::framed_address) instead of over "
          "gRPC; the coordinator then sends its Participant calls to the agents' framed ports, "
          "and the agents their Enlists to the coordinator's, too.");
ABSL_FLAG(std::vector<std::string>, coordinator_flags, {},
          "More flags for txcoord, comma-separated (e.g. --framed_participants=false, to "
          "measure a change against its absence in one run).");
ABSL_FLAG(std::vector<std::string>, agent_flags, {},
          "More flags for every txagent, comma-separated (e.g. --phase2_sync_delay=0).");
ABSL_FLAG(bool, keep, false, "Keep the data directory (daemon logs, databases, WAL).");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON to this file.");
ABSL_FLAG(std::string, commit, "",
          "Label of the source tree measured (e.g. `git describe --always --dirty`), recorded with "
          "the results.");
ABSL_FLAG(int64_t, memory_transactions, 40000,
          "Open this many transactions (Begin + Enlist, never committed) after the sweep and "
          "report the coordinator's RSS per open transaction; 0 skips it.");
ABSL_FLAG(int, memory_branches, 3, "Branches enlisted in each transaction of the memory probe.");
ABSL_FLAG(std::string, pid_file, "",
          "Write the daemons' pids here once they run (lines \"coordinator PID\", \"agentN PID\"), "
          "e.g. for attaching a profiler.");
ABSL_FLAG(std::string, daemon_log_level, "warning",
          "--log_level of the daemons: per-call logging would be measured as protocol cost.");

namespace txcoord::bench {
namespace {

// The default matrix (see docs/benchmarks.md): the clients sweep at three
// branches for plain 2PC and early prepare, and at one branch for one-phase;
// the branches sweep at one client. 17 points, about 6 minutes.
std::vector<Point> DefaultMatrix() {
  std::vector<Point> points;
  for (int clients : {1, 4, 16, 64}) points.push_back({Mode::kOnePhase, 1, clients});
  for (int branches : {2, 3, 5}) points.push_back({Mode::kTwoPhase, branches, 1});
  for (int clients : {4, 16, 64}) points.push_back({Mode::kTwoPhase, 3, clients});
  for (int branches : {1, 2, 3, 5}) points.push_back({Mode::kEarlyPrepare, branches, 1});
  for (int clients : {4, 16, 64}) points.push_back({Mode::kEarlyPrepare, 3, clients});
  return points;
}

std::vector<Point> SmokeMatrix() {
  return {{Mode::kOnePhase, 1, 2}, {Mode::kTwoPhase, 3, 4}, {Mode::kEarlyPrepare, 3, 4}};
}

bool ParsePoint(const std::string& text, Point* point) {
  const std::vector<std::string> parts = absl::StrSplit(text, ':');
  return parts.size() == 3 && ParseMode(parts[0], &point->mode) &&
         absl::SimpleAtoi(parts[1], &point->branches) &&
         absl::SimpleAtoi(parts[2], &point->clients);
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string CommandLine(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return absl::StrJoin(args, " ");
}

// One measurement of the floor: fsync, then RTT (and, for the CPU figures
// only, a bare TCP round trip), with the daemons idle.
struct FloorSamples {
  std::vector<Clock::duration> fsync;
  std::vector<Clock::duration> rtt;
};

absl::StatusOr<FloorSamples> MeasureFloor(const std::string& dir, int record_bytes,
                                          const std::string& coordinator, pid_t coordinator_pid,
                                          double seconds, RoundTripCpu* rpc_cpu,
                                          RoundTripCpu* tcp_cpu) {
  FloorSamples floor;
  absl::StatusOr<std::vector<Clock::duration>> fsync =
      MeasureFsync(dir, record_bytes, Seconds(seconds * 2 / 3));
  if (!fsync.ok()) return fsync.status();
  floor.fsync = *std::move(fsync);
  absl::StatusOr<std::vector<Clock::duration>> rtt =
      MeasureGrpcRoundTrip(coordinator, Seconds(seconds / 3), coordinator_pid, rpc_cpu);
  if (!rtt.ok()) return rtt.status();
  floor.rtt = *std::move(rtt);
  // At the same moments as the RPC's CPU, so that the two compare.
  absl::StatusOr<std::vector<Clock::duration>> tcp =
      MeasureTcpRoundTrip(Seconds(seconds / 6), tcp_cpu);
  if (!tcp.ok()) return tcp.status();
  return floor;
}

std::vector<Clock::duration> Concat(const std::vector<Clock::duration>& a,
                                    const std::vector<Clock::duration>& b) {
  std::vector<Clock::duration> all = a;
  all.insert(all.end(), b.begin(), b.end());
  return all;
}

absl::Status WritePidFile(const std::string& path, testing::Cluster& cluster) {
  std::ofstream file(path, std::ios::trunc);
  file << "coordinator " << cluster.coordinator()->pid() << "\n";
  for (int i = 0; i < cluster.agent_count(); ++i) {
    file << "agent" << i << " " << cluster.agent(i)->pid() << "\n";
  }
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

int Fail(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "txn_bench: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

int Run(int argc, char** argv) {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  std::vector<Point> points;
  if (!absl::GetFlag(FLAGS_points).empty()) {
    for (const std::string& text : absl::GetFlag(FLAGS_points)) {
      Point point;
      if (!ParsePoint(text, &point)) {
        std::fprintf(stderr, "txn_bench: bad --points entry \"%s\" (want MODE:BRANCHES:CLIENTS)\n",
                     text.c_str());
        return 2;
      }
      points.push_back(point);
    }
  } else {
    points = smoke ? SmokeMatrix() : DefaultMatrix();
  }
  int agents = absl::GetFlag(FLAGS_agents);
  int max_clients = 0;
  for (const Point& point : points) {
    if (absl::GetFlag(FLAGS_agents) == 0) agents = std::max(agents, point.branches);
    max_clients = std::max(max_clients, point.clients);
  }
  for (const Point& point : points) {
    if (absl::Status valid = ValidatePoint(point, agents); !valid.ok()) {
      std::fprintf(stderr, "txn_bench: %s\n", std::string(valid.message()).c_str());
      return 2;
    }
  }
  const int rows_per_client = absl::GetFlag(FLAGS_rows_per_client);
  if (rows_per_client < 2) {
    std::fprintf(stderr, "txn_bench: --rows_per_client must be at least 2\n");
    return 2;
  }

  RunReport report;
  const absl::Time started = absl::Now();
  report.started_utc = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", started, absl::UTCTimeZone());
  report.commit = absl::GetFlag(FLAGS_commit).empty() ? "unknown" : absl::GetFlag(FLAGS_commit);
  report.flags = CommandLine(argc, argv);
  report.branches_at_once = absl::GetFlag(FLAGS_branches_at_once);
  report.name_branches = absl::GetFlag(FLAGS_name_branches);
  report.reserve_txids = absl::GetFlag(FLAGS_reserve_txids);
  report.framed_ports = absl::GetFlag(FLAGS_framed_ports);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  report.host = host;
  utsname uts{};
  if (uname(&uts) == 0) report.kernel = uts.release;
  report.cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  report.smoke = smoke;
  report.warmup_seconds = smoke ? 0.2 : absl::GetFlag(FLAGS_warmup);
  report.point_seconds = smoke ? 0.4 : absl::GetFlag(FLAGS_seconds);
  report.fsync_record_bytes = 137;  // a WAL COMMIT record of three branches, framed
  // Per measurement between two points: 2/3 fsync, 1/3 RTT.
  const double floor_seconds = smoke ? 0.15 : 0.9;
  const int64_t memory_transactions =
      smoke ? std::min<int64_t>(400, absl::GetFlag(FLAGS_memory_transactions))
            : absl::GetFlag(FLAGS_memory_transactions);

  // The data directory: a fresh one under --dir, or the cluster's own temp.
  testing::ClusterOptions options;
  options.agents = agents;
  options.coordinator_flags = {"--log_level=" + absl::GetFlag(FLAGS_daemon_log_level)};
  for (const std::string& flag : absl::GetFlag(FLAGS_coordinator_flags)) {
    options.coordinator_flags.push_back(flag);
  }
  options.agent_flags = {"--log_level=" + absl::GetFlag(FLAGS_daemon_log_level)};
  for (const std::string& flag : absl::GetFlag(FLAGS_agent_flags)) {
    options.agent_flags.push_back(flag);
  }
  options.agent_framed_port = report.framed_ports;
  options.coordinator_framed_port = report.framed_ports;
  std::string own_dir;
  if (!absl::GetFlag(FLAGS_dir).empty()) {
    std::string templ = absl::StrCat(absl::GetFlag(FLAGS_dir), "/txn_bench.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror(("txn_bench: mkdtemp " + templ).c_str());
      return 1;
    }
    own_dir = templ;
    options.dir = own_dir;
  }
  options.keep_dir = absl::GetFlag(FLAGS_keep);
  absl::StatusOr<std::unique_ptr<testing::Cluster>> cluster = testing::Cluster::Start(options);
  if (!cluster.ok()) return Fail(cluster.status(), "starting the daemons");
  report.dir = (*cluster)->dir();
  if (!absl::GetFlag(FLAGS_pid_file).empty()) {
    if (absl::Status s = WritePidFile(absl::GetFlag(FLAGS_pid_file), **cluster); !s.ok()) {
      return Fail(s, "pid file");
    }
  }

  ClientOptions client_options;
  client_options.reserve_txids = absl::GetFlag(FLAGS_reserve_txids);
  client_options.framed_address = (*cluster)->coordinator_framed_address();
  Client coordinator((*cluster)->coordinator_address(), client_options);
  std::vector<std::unique_ptr<AgentClient>> agent_clients;
  Targets targets;
  targets.coordinator = &coordinator;
  targets.coordinator_pid = (*cluster)->coordinator()->pid();
  targets.rows_per_client = rows_per_client;
  targets.branches_at_once = absl::GetFlag(FLAGS_branches_at_once);
  targets.name_branches = absl::GetFlag(FLAGS_name_branches);
  targets.floor_dir = (*cluster)->dir();
  targets.fsync_record_bytes = report.fsync_record_bytes;
  for (int i = 0; i < agents; ++i) {
    AgentClientOptions agent_options;
    agent_options.framed_address = (*cluster)->agent_framed_address(i);
    agent_clients.push_back(
        std::make_unique<AgentClient>((*cluster)->agent_address(i), agent_options));
    targets.agents.push_back(agent_clients.back().get());
    targets.agent_pids.push_back((*cluster)->agent(i)->pid());
  }
  if (absl::Status s = CreateAccounts(targets.agents, max_clients, rows_per_client); !s.ok()) {
    return Fail(s, "creating the accounts");
  }

  report.load_before = LoadAverage();
  std::printf("txn_bench: %zu points, %d agents, data in %s\n", points.size(), agents,
              report.dir.c_str());
  PrintHeader(stdout);
  std::fflush(stdout);

  // The floor is measured before the first point and after each one; a
  // point is read against the samples on both sides of it.
  std::vector<Clock::duration> all_fsync, all_rtt;
  RoundTripCpu rpc_cpu, tcp_cpu;
  auto measure_floor = [&] {
    return MeasureFloor(report.dir, report.fsync_record_bytes, (*cluster)->coordinator_address(),
                        targets.coordinator_pid, floor_seconds, &rpc_cpu, &tcp_cpu);
  };
  absl::StatusOr<FloorSamples> floor_before = measure_floor();
  if (!floor_before.ok()) return Fail(floor_before.status(), "measuring the floor");
  bool failures = false;
  for (const Point& point : points) {
    const std::string name =
        absl::StrCat(ModeName(point.mode), ":", point.branches, ":", point.clients);
    absl::StatusOr<PointResult> result =
        RunPoint(targets, point, Seconds(report.warmup_seconds), Seconds(report.point_seconds));
    if (!result.ok()) {
      (*cluster)->KeepDir();
      std::fprintf(stderr, "txn_bench: data kept in %s\n", report.dir.c_str());
      return Fail(result.status(), ("point " + name).c_str());
    }
    absl::StatusOr<FloorSamples> floor_after = measure_floor();
    if (!floor_after.ok()) return Fail(floor_after.status(), "measuring the floor");
    result->fsync_idle = Summarize(Concat(floor_before->fsync, floor_after->fsync));
    result->rtt = Summarize(Concat(floor_before->rtt, floor_after->rtt));
    all_fsync.insert(all_fsync.end(), floor_before->fsync.begin(), floor_before->fsync.end());
    all_rtt.insert(all_rtt.end(), floor_before->rtt.begin(), floor_before->rtt.end());
    floor_before = *std::move(floor_after);
    if (result->failed > 0 || result->committed == 0) failures = true;
    PrintRow(report, *result, stdout);
    std::fflush(stdout);
    report.points.push_back(*std::move(result));
  }
  all_fsync.insert(all_fsync.end(), floor_before->fsync.begin(), floor_before->fsync.end());
  all_rtt.insert(all_rtt.end(), floor_before->rtt.begin(), floor_before->rtt.end());
  report.fsync = Summarize(std::move(all_fsync));
  report.rtt = Summarize(std::move(all_rtt));
  report.rpc_cpu_ms = rpc_cpu.ms_per_call();
  report.tcp_cpu_ms = tcp_cpu.ms_per_call();
  report.load_after = LoadAverage();

  if (memory_transactions > 0) {
    absl::StatusOr<OpenTxnMemory> memory =
        MeasureOpenTxnMemory((*cluster)->coordinator_address(), targets.coordinator_pid,
                             memory_transactions, absl::GetFlag(FLAGS_memory_branches));
    if (!memory.ok()) return Fail(memory.status(), "measuring memory per open transaction");
    report.memory = *memory;
  }
  if (absl::Status running = (*cluster)->CheckRunning(); !running.ok()) {
    return Fail(running, "a daemon died");
  }
  report.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);

  std::printf("\n");
  PrintReport(report, stdout);
  if (!absl::GetFlag(FLAGS_json_out).empty()) {
    if (absl::Status s = WriteJson(report, absl::GetFlag(FLAGS_json_out)); !s.ok()) {
      return Fail(s, "writing the JSON");
    }
    std::printf("json: %s\n", absl::GetFlag(FLAGS_json_out).c_str());
  }
  // The memory probe left transactions open: kill rather than wait for a
  // graceful stop that would try to abort them at made-up participants.
  cluster->reset();
  if (!own_dir.empty() && !absl::GetFlag(FLAGS_keep)) {
    std::error_code ignored;
    std::filesystem::remove_all(own_dir, ignored);
  }
  if (failures) {
    std::fprintf(stderr, "txn_bench: some transactions failed or a point committed none\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "commit latency and throughput of whole transactions against a real txcoord\n"
      "coordinator and txagent agents (child processes on loopback, data on disk), for plain\n"
      "2PC, early prepare and one-phase commit, 1..64 closed-loop clients and 1..5 branches;\n"
      "each latency is shown as a multiple of the floor (RTT and fsync) measured in the same\n"
      "run. The daemons are the ones built next to this binary, or $TXCOORD_BIN/$TXAGENT_BIN.\n"
      "Usage: txn_bench [--points=2pc:3:16,...] [--seconds=15] [--json_out=FILE] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  return txcoord::bench::Run(argc, argv);
}
