// The baseline txcoord is measured against: PostgreSQL's native two-phase
// commit driven by hand from the client across three services' databases,
// each on a PostgreSQL server of its own (started here, on loopback, data in
// a fresh directory, deleted afterwards), with txn_bench's transfer and the
// same closed-loop clients, warm-up, latency percentiles and CPU accounting.
// It keeps no durable decision log, so it is less safe than txcoord: a
// crash between the PREPAREs and the COMMITs leaves branches for a person
// to settle.
//
//   pg2pc_bench                              # 1, 16, 64 clients, 10 s each
//   pg2pc_bench --clients=16 --seconds=30 --json_out=pg.json
//   pg2pc_bench --smoke                      # a few seconds (make test)
//
// scripts/bench --against-pg runs it and txn_bench back to back; see
// docs/benchmarks.md.
#include <pthread.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_json.h"
#include "bench/floors.h"
#include "bench/pg2pc_workload.h"
#include "bench/pg_servers.h"
#include "bench/proc_stats.h"
#include "common/flag_usage.h"

ABSL_FLAG(bool, smoke, false,
          "Prove the benchmark works in a few seconds (what make test runs): clients 1 and 4, "
          "short points and floors. Its numbers mean nothing. Exits 77 (skipped) without "
          "PostgreSQL.");
ABSL_FLAG(std::vector<std::string>, clients, std::vector<std::string>({"1", "16", "64"}),
          "Comma-separated numbers of concurrent closed-loop clients, one point each.");
ABSL_FLAG(double, seconds, 10, "Measured time of each point, after --warmup.");
ABSL_FLAG(double, warmup, 2, "Time each point runs before it is measured.");
ABSL_FLAG(int, servers, 3,
          "PostgreSQL servers, one per service: each transfer has a branch on every one.");
ABSL_FLAG(int, rows_per_client, 64,
          "Rows each client owns on every server and updates in turn (as txn_bench's).");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON to this file.");
ABSL_FLAG(std::string, commit, "", "Label of the source tree measured, recorded with the results.");
ABSL_FLAG(bool, keep, false, "Keep the servers' data directories and logs.");

namespace txcoord::bench {
namespace {

constexpr int kFsyncRecordBytes = 137;  // the same floor as txn_bench's

// Set by the signal thread on SIGINT, SIGTERM or SIGHUP: the running point
// ends, and the servers are stopped and deleted on the way out.
std::atomic<bool> interrupted{false};

// Blocks the termination signals in every thread (those started later
// inherit the mask) and takes them on one thread of its own instead.
void HandleSignalsOnAThread() {
  static sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (!interrupted.exchange(true)) {
        std::fprintf(stderr, "pg2pc_bench: %s: stopping the servers\n", strsignal(sig));
      }
    }
  }).detach();
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double Ratio(double value, double floor) { return floor > 0 ? value / floor : 0; }

double PerTxMs(double cpu_seconds, int64_t transactions) {
  return transactions > 0 ? cpu_seconds * 1000 / static_cast<double>(transactions) : 0;
}

// The rounds the client waits for: BEGIN; UPDATE, PREPARE, COMMIT PREPARED,
// the last two each with a WAL flush at every server (in parallel).
double CommitFloorMs(const PgPointResult& p) { return 2 * (p.rtt.p50_ms + p.fsync.p50_ms); }
double TxnFloorMs(const PgPointResult& p) { return p.rtt.p50_ms + CommitFloorMs(p); }

struct Report {
  std::string started_utc, commit, flags, host, kernel, postgres, dir, load_before, load_after;
  int cpus = 0;
  int servers = 0;
  bool smoke = false;
  double warmup_seconds = 0, point_seconds = 0, wall_seconds = 0;
  std::vector<PgPointResult> points;
  std::string check;  // the invariants' verdict
};

void PrintHeader() {
  std::printf("%-15s | %-13s | %-35s | %-35s | %-20s | %-15s | %s\n", "", "floor p50, ms",
              "commit part, ms (x: of its floor)", "whole transfer, ms", "round p50, ms",
              "CPU ms/transfer", "CPU busy");
  std::printf(
      "%2s %4s %7s | %6s %6s | %5s %6s %6s %6s %7s %4s | %5s %6s %6s %6s %7s %4s | %6s %6s "
      "%6s | %6s %8s | %s\n",
      "B", "cli", "tx/s", "fsync", "RTT", "floor", "p50", "p95", "p99", "max", "xp50", "floor",
      "p50", "p95", "p99", "max", "xp50", "update", "prep", "commit", "client", "servers",
      "bench/all");
}

void PrintRow(const Report& report, const PgPointResult& p) {
  const double busy = p.seconds > 0 && report.cpus > 0
                          ? (p.servers_cpu_s + p.client_cpu_s) / (p.seconds * report.cpus)
                          : 0;
  std::printf(
      "%2d %4d %7.0f | %6.3f %6.3f | %5.2f %6.2f %6.2f %6.2f %7.1f %4.1f | %5.2f %6.2f %6.2f "
      "%6.2f %7.1f %4.1f | %6.2f %6.2f %6.2f | %6.3f %8.3f | %3.0f%%/%3.0f%%",
      p.branches, p.clients, p.tx_per_second(), p.fsync.p50_ms, p.rtt.p50_ms, CommitFloorMs(p),
      p.commit.p50_ms, p.commit.p95_ms, p.commit.p99_ms, p.commit.max_ms,
      Ratio(p.commit.p50_ms, CommitFloorMs(p)), TxnFloorMs(p), p.txn.p50_ms, p.txn.p95_ms,
      p.txn.p99_ms, p.txn.max_ms, Ratio(p.txn.p50_ms, TxnFloorMs(p)), p.update.p50_ms,
      p.prepare.p50_ms, p.commit_prepared.p50_ms, PerTxMs(p.client_cpu_s, p.committed),
      PerTxMs(p.servers_cpu_s, p.committed), 100 * busy, 100 * p.machine_busy);
  if (p.failed > 0) {
    std::printf("  %d FAILED, e.g. %s", static_cast<int>(p.failed), p.first_failure.c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

std::string JsonPoint(const Report& report, const PgPointResult& p) {
  std::string out = absl::StrFormat(
      "    {\"mode\": \"pg2pc\", \"branches\": %d, \"clients\": %d, \"seconds\": %.3f, "
      "\"committed\": %d, \"failed\": %d, \"tx_per_s\": %.1f,\n",
      p.branches, p.clients, p.seconds, p.committed, p.failed, p.tx_per_second());
  if (!p.first_failure.empty()) {
    absl::StrAppend(&out, "     \"first_failure\": ", JsonQuote(p.first_failure), ",\n");
  }
  for (const auto& [name, stats] : std::vector<std::pair<const char*, const LatencyStats*>>{
           {"floor_fsync_ms", &p.fsync},
           {"floor_rtt_ms", &p.rtt},
           {"commit_ms", &p.commit},
           {"txn_ms", &p.txn},
           {"update_ms", &p.update},
           {"prepare_ms", &p.prepare},
           {"commit_prepared_ms", &p.commit_prepared}}) {
    absl::StrAppend(&out, "     \"", name, "\": ", JsonLatency(*stats), ",\n");
  }
  absl::StrAppend(&out, absl::StrFormat("     \"commit_floor_ms\": %.4f, \"txn_floor_ms\": %.4f,\n",
                                        CommitFloorMs(p), TxnFloorMs(p)));
  const double busy = p.seconds > 0 && report.cpus > 0
                          ? (p.servers_cpu_s + p.client_cpu_s) / (p.seconds * report.cpus)
                          : 0;
  absl::StrAppend(&out,
                  absl::StrFormat("     \"cpu_ms_per_tx\": {\"client\": %.4f, \"servers\": %.4f}, "
                                  "\"cpu_busy\": %.3f, \"machine_cpu_busy\": %.3f}",
                                  PerTxMs(p.client_cpu_s, p.committed),
                                  PerTxMs(p.servers_cpu_s, p.committed), busy, p.machine_busy));
  return out;
}

absl::Status WriteJson(const Report& report, const std::string& path) {
  std::string out = "{\n  \"benchmark\": \"pg2pc_bench\",\n  \"format\": 1,\n";
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "  \"conditions\": {\"started_utc\": %s, \"commit\": %s, \"flags\": %s, \"host\": %s, "
          "\"kernel\": %s, \"cpus\": %d, \"postgres\": %s, \"servers\": %d, \"dir\": %s, "
          "\"smoke\": %s, \"warmup_seconds\": %.3f, \"point_seconds\": %.3f, "
          "\"load_before\": %s, \"load_after\": %s, \"wall_seconds\": %.1f},\n",
          JsonQuote(report.started_utc), JsonQuote(report.commit), JsonQuote(report.flags),
          JsonQuote(report.host), JsonQuote(report.kernel), report.cpus, JsonQuote(report.postgres),
          report.servers, JsonQuote(report.dir), report.smoke ? "true" : "false",
          report.warmup_seconds, report.point_seconds, JsonQuote(report.load_before),
          JsonQuote(report.load_after), report.wall_seconds));
  absl::StrAppend(&out, "  \"check\": ", JsonQuote(report.check), ",\n  \"points\": [\n");
  for (size_t i = 0; i < report.points.size(); ++i) {
    absl::StrAppend(&out, JsonPoint(report, report.points[i]),
                    i + 1 < report.points.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, "  ]\n}\n");
  std::ofstream file(path, std::ios::trunc);
  file << out;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

int Fail(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "pg2pc_bench: %s: %s\n", what, status.ToString().c_str());
  return interrupted.load() ? 130 : 1;
}

int Run(int argc, char** argv) {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  std::vector<int> clients;
  for (const std::string& text :
       smoke ? std::vector<std::string>{"1", "4"} : absl::GetFlag(FLAGS_clients)) {
    int n = 0;
    if (!absl::SimpleAtoi(text, &n) || n < 1) {
      std::fprintf(stderr, "pg2pc_bench: bad --clients entry \"%s\"\n", text.c_str());
      return 2;
    }
    clients.push_back(n);
  }
  const int max_clients = *std::max_element(clients.begin(), clients.end());
  const int servers = absl::GetFlag(FLAGS_servers);
  if (servers < 2 || absl::GetFlag(FLAGS_rows_per_client) < 1) {
    std::fprintf(stderr, "pg2pc_bench: --servers must be at least 2, --rows_per_client 1\n");
    return 2;
  }

  Report report;
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
  report.servers = servers;
  report.smoke = smoke;
  report.warmup_seconds = smoke ? 0.1 : absl::GetFlag(FLAGS_warmup);
  report.point_seconds = smoke ? 0.3 : absl::GetFlag(FLAGS_seconds);
  const double floor_seconds = smoke ? 0.06 : 0.6;  // per measurement: 2/3 fsync, 1/3 RTT

  PgServersOptions options;
  options.servers = servers;
  options.max_connections = max_clients + 20;
  options.max_prepared_transactions = max_clients + 20;
  options.keep_dir = absl::GetFlag(FLAGS_keep);
  absl::StatusOr<std::unique_ptr<PgServers>> pg = PgServers::Start(options);
  if (!pg.ok()) {
    const bool missing = absl::IsNotFound(pg.status()) || absl::IsFailedPrecondition(pg.status());
    std::fprintf(stderr, "pg2pc_bench: %s%s\n", std::string(pg.status().message()).c_str(),
                 missing ? " (skipped)" : "");
    return missing ? 77 : 1;
  }
  report.dir = (*pg)->dir();
  PgTargets targets;
  for (int i = 0; i < servers; ++i) targets.conninfo.push_back((*pg)->conninfo(i));
  targets.rows_per_client = absl::GetFlag(FLAGS_rows_per_client);
  targets.servers_cpu = [&pg] { return (*pg)->CpuSeconds(); };
  absl::StatusOr<std::string> postgres = PgDescription(targets);
  if (!postgres.ok()) return Fail(postgres.status(), "asking the server");
  report.postgres = *postgres;
  if (absl::Status s = CreatePgAccounts(targets, max_clients); !s.ok()) {
    return Fail(s, "creating the accounts");
  }

  report.load_before = LoadAverage();
  std::printf("pg2pc_bench: %zu points, %d PostgreSQL servers (%s), data in %s\n", clients.size(),
              servers, report.postgres.c_str(), report.dir.c_str());
  PrintHeader();
  struct Floor {
    std::vector<Clock::duration> fsync, rtt;
  };
  auto measure_floor = [&]() -> absl::StatusOr<Floor> {
    Floor floor;
    absl::StatusOr<std::vector<Clock::duration>> fsync =
        MeasureFsync(report.dir, kFsyncRecordBytes, Seconds(floor_seconds * 2 / 3));
    if (!fsync.ok()) return fsync.status();
    absl::StatusOr<std::vector<Clock::duration>> rtt =
        MeasurePgRoundTrip(targets.conninfo[0], Seconds(floor_seconds / 3));
    if (!rtt.ok()) return rtt.status();
    floor.fsync = *std::move(fsync);
    floor.rtt = *std::move(rtt);
    return floor;
  };
  absl::StatusOr<Floor> before = measure_floor();
  if (!before.ok()) return Fail(before.status(), "measuring the floor");
  bool failures = false;
  for (int n : clients) {
    if (interrupted.load()) break;
    if (absl::Status s = CheckpointAll(targets); !s.ok()) return Fail(s, "CHECKPOINT");
    absl::StatusOr<PgPointResult> result = RunPgPoint(targets, n, Seconds(report.warmup_seconds),
                                                      Seconds(report.point_seconds), interrupted);
    if (!result.ok()) return Fail(result.status(), absl::StrCat("point ", n).c_str());
    if (interrupted.load()) break;  // a cut window is no result
    absl::StatusOr<Floor> after = measure_floor();
    if (!after.ok()) return Fail(after.status(), "measuring the floor");
    Floor both = *before;
    both.fsync.insert(both.fsync.end(), after->fsync.begin(), after->fsync.end());
    both.rtt.insert(both.rtt.end(), after->rtt.begin(), after->rtt.end());
    result->fsync = Summarize(std::move(both.fsync));
    result->rtt = Summarize(std::move(both.rtt));
    before = *std::move(after);
    if (result->failed > 0 || result->committed == 0) failures = true;
    PrintRow(report, *result);
    report.points.push_back(*std::move(result));
  }
  if (interrupted.load()) return 130;

  const int64_t expected =
      static_cast<int64_t>(servers) * max_clients * targets.rows_per_client * 1000;
  absl::Status check = CheckPgBank(targets, expected);
  report.check = check.ok() ? absl::StrCat("balances add up to ", expected,
                                           " as before; no transaction left prepared")
                            : std::string(check.message());
  report.load_after = LoadAverage();
  report.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  std::printf(
      "\npg2pc_bench %s: commit %s, %s, %d CPUs, kernel %s\n"
      "points: %.1f s warm-up + %.1f s measured each%s; load average %s -> %s\n"
      "floor, just before and after each point: fsync = write(%dB) + fdatasync; RTT = libpq "
      "empty query. Commit part = PREPARE TRANSACTION + COMMIT PREPARED rounds (floor 2 RTT + 2 "
      "fsync); whole transfer = BEGIN; UPDATE round + commit part (floor 3 RTT + 2 fsync). CPU: "
      "the client threads (this process), all servers' processes; busy: share of all CPUs used "
      "by the benchmark and its servers / by everything.\ncheck: %s\n",
      report.started_utc.c_str(), report.commit.c_str(), report.host.c_str(), report.cpus,
      report.kernel.c_str(), report.warmup_seconds, report.point_seconds, smoke ? " (smoke)" : "",
      report.load_before.c_str(), report.load_after.c_str(), kFsyncRecordBytes,
      report.check.c_str());
  if (!absl::GetFlag(FLAGS_json_out).empty()) {
    if (absl::Status s = WriteJson(report, absl::GetFlag(FLAGS_json_out)); !s.ok()) {
      return Fail(s, "writing the JSON");
    }
    std::printf("json: %s\n", absl::GetFlag(FLAGS_json_out).c_str());
  }
  if (absl::Status s = (*pg)->Stop(); !s.ok()) return Fail(s, "stopping the servers");
  if (!check.ok()) return Fail(check, "check");
  if (failures) {
    std::fprintf(stderr, "pg2pc_bench: some transfers failed or a point committed none\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "the native-2PC baseline: starts --servers PostgreSQL servers (one per service, on\n"
      "loopback, data in a fresh directory under $TMPDIR, deleted afterwards) and runs "
      "txn_bench's\n"
      "transfer across them by hand: BEGIN; UPDATE on each, PREPARE TRANSACTION on all, COMMIT\n"
      "PREPARED on all, each round on every server at once. Prints throughput, whole-transfer and\n"
      "commit-part latency, CPU per transfer and the floor, then checks that money is conserved\n"
      "and nothing is left prepared. PostgreSQL: $PG_BIN_DIR or /usr/lib/postgresql/*/bin.\n"
      "Usage: pg2pc_bench [--clients=1,16,64] [--seconds=10] [--json_out=FILE] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  txcoord::bench::HandleSignalsOnAThread();
  return txcoord::bench::Run(argc, argv);
}
