#include "bench/txn_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/bench_json.h"

namespace txcoord::bench {
namespace {

double Ratio(double value, double floor) { return floor > 0 ? value / floor : 0; }

double PerTxMs(double cpu_seconds, int64_t transactions) {
  return transactions > 0 ? cpu_seconds * 1000 / static_cast<double>(transactions) : 0;
}

// Share of all CPUs the daemons and the clients used together.
double Busy(const RunReport& report, const PointResult& p) {
  if (p.seconds <= 0 || report.cpus <= 0) return 0;
  return (p.coordinator_cpu_s + p.agents_cpu_s + p.client_cpu_s) / (p.seconds * report.cpus);
}

std::string JsonPoint(const RunReport& report, const PointResult& p) {
  const double commit_floor = CommitFloorMs(p);
  const double txn_floor = TxnFloorMs(report, p);
  std::string out = absl::StrFormat(
      "    {\"mode\": \"%s\", \"branches\": %d, \"clients\": %d, \"seconds\": %.3f, "
      "\"committed\": %d, \"failed\": %d, \"tx_per_s\": %.1f,\n",
      ModeName(p.point.mode), p.point.branches, p.point.clients, p.seconds, p.committed, p.failed,
      p.tx_per_second());
  if (!p.first_failure.empty()) {
    absl::StrAppend(&out, "     \"first_failure\": ", JsonQuote(p.first_failure), ",\n");
  }
  absl::StrAppend(&out, "     \"floor_fsync_ms\": ", JsonLatency(p.fsync), ",\n");
  absl::StrAppend(&out, "     \"floor_fsync_idle_ms\": ", JsonLatency(p.fsync_idle), ",\n");
  absl::StrAppend(&out, "     \"floor_rtt_ms\": ", JsonLatency(p.rtt), ",\n");
  absl::StrAppend(
      &out, absl::StrFormat("     \"rpc_calls_per_tx\": %d, \"rpc_cpu_ceiling_tx_per_s\": %.1f,\n",
                            RpcsPerTransaction(report, p.point), RpcCpuCeiling(report, p.point)));
  absl::StrAppend(&out, "     \"commit_ms\": ", JsonLatency(p.commit), ",\n");
  absl::StrAppend(&out, "     \"txn_ms\": ", JsonLatency(p.txn), ",\n");
  absl::StrAppend(&out, "     \"begin_ms\": ", JsonLatency(p.begin), ",\n");
  absl::StrAppend(&out, "     \"execute_ms\": ", JsonLatency(p.execute), ",\n");
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "     \"commit_floor_ms\": %.4f, \"commit_x_floor\": {\"p50\": %.3f, \"p95\": %.3f, "
          "\"p99\": %.3f, \"max\": %.3f},\n",
          commit_floor, Ratio(p.commit.p50_ms, commit_floor), Ratio(p.commit.p95_ms, commit_floor),
          Ratio(p.commit.p99_ms, commit_floor), Ratio(p.commit.max_ms, commit_floor)));
  absl::StrAppend(
      &out, absl::StrFormat(
                "     \"txn_floor_ms\": %.4f, \"txn_x_floor\": {\"p50\": %.3f, \"p95\": %.3f, "
                "\"p99\": %.3f, \"max\": %.3f},\n",
                txn_floor, Ratio(p.txn.p50_ms, txn_floor), Ratio(p.txn.p95_ms, txn_floor),
                Ratio(p.txn.p99_ms, txn_floor), Ratio(p.txn.max_ms, txn_floor)));
  absl::StrAppend(
      &out, absl::StrFormat("     \"cpu_ms_per_tx\": {\"coordinator\": %.4f, \"agents\": %.4f, "
                            "\"client\": %.4f}, \"cpu_busy\": %.3f, \"machine_cpu_busy\": %.3f",
                            PerTxMs(p.coordinator_cpu_s, p.committed),
                            PerTxMs(p.agents_cpu_s, p.committed),
                            PerTxMs(p.client_cpu_s, p.committed), Busy(report, p), p.machine_busy));
  absl::StrAppend(
      &out,
      absl::StrFormat(",\n     \"timeline\": {\"start_unix\": %.3f, \"start_monotonic_raw\": %.6f, "
                      "\"bucket_s\": 0.1, \"commits\": [%s]}}",
                      p.window_start_unix, p.window_start_monotonic_raw,
                      absl::StrJoin(p.commits_per_100ms, ",")));
  return out;
}

}  // namespace

double CommitFloorMs(Mode mode, double rtt_ms, double fsync_ms) {
  return mode == Mode::kTwoPhase ? 2 * (rtt_ms + fsync_ms) : rtt_ms + fsync_ms;
}

double CommitFloorMs(const PointResult& p) {
  return CommitFloorMs(p.point.mode, p.rtt.p50_ms, p.fsync.p50_ms);
}

int RpcsPerTransaction(const RunReport& report, const Point& point) {
  const int begin = report.reserve_txids > 0 ? 0 : 1;
  return begin + 1 + point.branches * (point.mode == Mode::kTwoPhase ? 4 : 3);
}

double RpcCpuCeiling(const RunReport& report, const Point& point) {
  if (report.rpc_cpu_ms <= 0) return 0;
  return 1e3 * report.cpus / (RpcsPerTransaction(report, point) * report.rpc_cpu_ms);
}

double TxnFloorMs(const RunReport& report, const PointResult& p) {
  const double per_branch =
      2 * p.rtt.p50_ms + (p.point.mode == Mode::kEarlyPrepare ? p.fsync.p50_ms : 0);
  const double begin = report.reserve_txids > 0 ? 0 : p.rtt.p50_ms;
  return begin + p.point.branches * per_branch + CommitFloorMs(p);
}

void PrintHeader(std::FILE* out) {
  std::fprintf(out, "%-21s | %-20s | %-46s | %-40s | %-22s | %s\n", "", "floor p50, ms",
               "Commit call, ms (x: multiple of the floor)", "whole transaction, ms",
               "CPU ms per transaction", "CPU busy");
  std::fprintf(out,
               "%-5s %2s %4s %7s | %6s %6s %6s | %6s %6s %6s %6s %6s %5s %5s | %6s %6s %6s %6s "
               "%6s %5s | %6s %6s %8s | %s\n",
               "mode", "B", "cli", "tx/s", "fsync", "idle", "RTT", "floor", "p50", "p95", "p99",
               "max", "xp50", "xp99", "floor", "p50", "p95", "p99", "max", "xp50", "client",
               "coord", "agents", "bench/all");
}

void PrintRow(const RunReport& report, const PointResult& p, std::FILE* out) {
  const double commit_floor = CommitFloorMs(p);
  const double txn_floor = TxnFloorMs(report, p);
  std::fprintf(
      out,
      "%-5s %2d %4d %7.0f | %6.3f %6.3f %6.3f | %6.2f %6.2f %6.2f %6.2f %6.1f %5.1f %5.1f | "
      "%6.2f %6.2f %6.2f %6.2f %6.1f %5.1f | %6.3f %6.3f %8.3f | %3.0f%%/%3.0f%%",
      ModeName(p.point.mode), p.point.branches, p.point.clients, p.tx_per_second(), p.fsync.p50_ms,
      p.fsync_idle.p50_ms, p.rtt.p50_ms, commit_floor, p.commit.p50_ms, p.commit.p95_ms,
      p.commit.p99_ms, p.commit.max_ms, Ratio(p.commit.p50_ms, commit_floor),
      Ratio(p.commit.p99_ms, commit_floor), txn_floor, p.txn.p50_ms, p.txn.p95_ms, p.txn.p99_ms,
      p.txn.max_ms, Ratio(p.txn.p50_ms, txn_floor), PerTxMs(p.client_cpu_s, p.committed),
      PerTxMs(p.coordinator_cpu_s, p.committed), PerTxMs(p.agents_cpu_s, p.committed),
      100 * Busy(report, p), 100 * p.machine_busy);
  if (p.failed > 0) {
    std::fprintf(out, "  %d FAILED, e.g. %s", static_cast<int>(p.failed), p.first_failure.c_str());
  }
  std::fprintf(out, "\n");
}

void PrintReport(const RunReport& report, std::FILE* out) {
  std::fprintf(out, "txn_bench %s: commit %s, %s, %d CPUs, kernel %s, dir %s\n",
               report.started_utc.c_str(), report.commit.c_str(), report.host.c_str(), report.cpus,
               report.kernel.c_str(), report.dir.c_str());
  const std::string reserved =
      report.reserve_txids > 0
          ? absl::StrCat(", txids reserved ", report.reserve_txids, " at a time (no Begin call)")
          : "";
  std::fprintf(out,
               "points: %.1f s warm-up + %.1f s measured each%s%s%s%s%s; load average %s -> %s\n",
               report.warmup_seconds, report.point_seconds, report.smoke ? " (smoke)" : "",
               report.branches_at_once ? ", branches executed at once" : "",
               report.name_branches ? ", branches named in Commit" : ", branches not named",
               reserved.c_str(),
               report.framed_ports ? ", Executes and Commits on the daemons' framed ports" : "",
               report.load_before.c_str(), report.load_after.c_str());
  double fsync_low = 0, fsync_high = 0;
  for (const PointResult& p : report.points) {
    if (fsync_low == 0 || p.fsync.p50_ms < fsync_low) fsync_low = p.fsync.p50_ms;
    fsync_high = std::max(fsync_high, p.fsync.p50_ms);
  }
  std::fprintf(out,
               "floor: fsync = write(%dB) + fdatasync, sampled every 10 ms while each point ran: "
               "p50 from %.3f to %.3f ms across points; with the daemons idle between points: p50 "
               "%.3f ms, p99 %.3f ms. RTT = gRPC Health/Check between points: p50 %.3f ms, p99 "
               "%.3f ms\n",
               report.fsync_record_bytes, fsync_low, fsync_high, report.fsync.p50_ms,
               report.fsync.p99_ms, report.rtt.p50_ms, report.rtt.p99_ms);
  if (report.rpc_cpu_ms > 0) {
    std::string ceilings;
    std::vector<std::string> seen;
    for (const PointResult& p : report.points) {
      const std::string name = absl::StrCat(ModeName(p.point.mode), ":", p.point.branches);
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
      seen.push_back(name);
      absl::StrAppend(&ceilings, ceilings.empty() ? "" : ", ", name, " (",
                      RpcsPerTransaction(report, p.point), " calls) ",
                      absl::StrFormat("%.0f", RpcCpuCeiling(report, p.point)));
    }
    std::fprintf(out,
                 "RPC CPU floor: one Health/Check round trip costs %.3f ms of CPU, client and "
                 "server together; at that price a transaction's calls, each sent alone, would "
                 "fill the %d CPUs at, in tx/s: %s\n",
                 report.rpc_cpu_ms, report.cpus, ceilings.c_str());
    if (report.tcp_cpu_ms > 0) {
      std::fprintf(out,
                   "TCP CPU floor: a bare loopback TCP round trip (blocking sockets, a thread at "
                   "each end) costs %.3f ms of CPU, both ends together: %.1f%% of the RPC's\n",
                   report.tcp_cpu_ms, 100 * report.tcp_cpu_ms / report.rpc_cpu_ms);
    }
  }
  std::fprintf(out,
               "commit floor: 2 RTT + 2 fsync for 2pc, RTT + fsync for early and 1pc, with the "
               "point's own fsync and RTT; txn floor: RTT (Begin; none with reserved txids) + B "
               "x (2 RTT [+ fsync if early]) + commit floor\n\n");
  PrintHeader(out);
  for (const PointResult& p : report.points) PrintRow(report, p, out);
  std::fprintf(out,
               "\nfsync: sampled during the point (the floor used); idle: between points. xp50, "
               "xp99: latency as a multiple of its floor. CPU ms per transaction: the "
               "client threads (this process), the coordinator, all agents together. CPU busy: "
               "share of all CPUs used by the benchmark and its daemons / by everything on the "
               "machine.\n");
  if (report.memory) {
    const OpenTxnMemory& m = *report.memory;
    std::fprintf(out,
                 "memory: %d open transactions with %d branches each: coordinator RSS %.1f -> "
                 "%.1f -> %.1f MiB, %.0f bytes per open transaction (slope of the second half)\n",
                 static_cast<int>(m.transactions), m.branches, m.rss_before / 1048576.0,
                 m.rss_half / 1048576.0, m.rss_after / 1048576.0, m.bytes_per_transaction);
  }
}

absl::Status WriteJson(const RunReport& report, const std::string& path) {
  std::string out = "{\n  \"benchmark\": \"txn_bench\",\n  \"format\": 1,\n";
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "  \"conditions\": {\"started_utc\": %s, \"commit\": %s, \"flags\": %s, \"host\": %s, "
          "\"kernel\": %s, \"cpus\": %d, \"dir\": %s, \"smoke\": %s, \"branches_at_once\": %s, "
          "\"name_branches\": %s, \"reserve_txids\": %u, \"framed_ports\": %s, "
          "\"warmup_seconds\": %.3f, "
          "\"point_seconds\": %.3f, \"load_before\": %s, \"load_after\": %s, "
          "\"wall_seconds\": %.1f},\n",
          JsonQuote(report.started_utc), JsonQuote(report.commit), JsonQuote(report.flags),
          JsonQuote(report.host), JsonQuote(report.kernel), report.cpus, JsonQuote(report.dir),
          report.smoke ? "true" : "false", report.branches_at_once ? "true" : "false",
          report.name_branches ? "true" : "false", report.reserve_txids,
          report.framed_ports ? "true" : "false", report.warmup_seconds, report.point_seconds,
          JsonQuote(report.load_before), JsonQuote(report.load_after), report.wall_seconds));
  absl::StrAppend(&out, "  \"floor\": {\"fsync_record_bytes\": ", report.fsync_record_bytes,
                  ",\n    \"fsync_ms\": ", JsonLatency(report.fsync),
                  ",\n    \"rtt_ms\": ", JsonLatency(report.rtt),
                  absl::StrFormat(",\n    \"rpc_cpu_ms\": %.4f", report.rpc_cpu_ms),
                  absl::StrFormat(",\n    \"tcp_cpu_ms\": %.4f", report.tcp_cpu_ms), "},\n");
  absl::StrAppend(&out, "  \"points\": [\n");
  for (size_t i = 0; i < report.points.size(); ++i) {
    absl::StrAppend(&out, JsonPoint(report, report.points[i]),
                    i + 1 < report.points.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, "  ]");
  if (report.memory) {
    const OpenTxnMemory& m = *report.memory;
    absl::StrAppend(
        &out, absl::StrFormat(
                  ",\n  \"memory\": {\"open_transactions\": %d, \"branches_per_transaction\": %d, "
                  "\"rss_before\": %d, \"rss_half\": %d, \"rss_after\": %d, "
                  "\"bytes_per_open_transaction\": %.1f, \"seconds\": %.2f}",
                  m.transactions, m.branches, m.rss_before, m.rss_half, m.rss_after,
                  m.bytes_per_transaction, m.seconds));
  }
  absl::StrAppend(&out, "\n}\n");
  std::ofstream file(path, std::ios::trunc);
  file << out;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace txcoord::bench
