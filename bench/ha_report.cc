#include "bench/ha_report.h"

#include <algorithm>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace txcoord::bench {
namespace {

double Ratio(double value, double floor) { return floor > 0 ? value / floor : 0; }

double PerTxMs(double cpu_seconds, int64_t transactions) {
  return transactions > 0 ? cpu_seconds * 1000 / static_cast<double>(transactions) : 0;
}

// Share of all CPUs the daemons (etcd too) and the clients used together.
double Busy(const HaReport& report, const PointResult& p) {
  if (p.seconds <= 0 || report.cpus <= 0) return 0;
  return (p.coordinator_cpu_s + p.agents_cpu_s + p.client_cpu_s) / (p.seconds * report.cpus);
}

double Busy(const HaReport& report, const LogPoint& point) {
  const PointResult& p = point.result;
  return Busy(report, p) + point.etcd_cpu_ms_per_tx * p.tx_per_second() / 1000 / report.cpus;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonStats(const LatencyStats& s) {
  return absl::StrFormat(
      "{\"samples\": %d, \"mean\": %.4f, \"p50\": %.4f, \"p95\": %.4f, \"p99\": %.4f, "
      "\"max\": %.4f}",
      s.samples, s.mean_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms);
}

// The etcd point with the same clients as a WAL point, if the run has one.
const LogPoint* Partner(const HaReport& report, const LogPoint& wal) {
  for (const LogPoint& p : report.points) {
    if (p.log == "etcd" && p.result.point.clients == wal.result.point.clients) return &p;
  }
  return nullptr;
}

// Median and maximum of one takeover figure over the rounds that have it.
struct Spread {
  double median = -1;
  double max = -1;
  int rounds = 0;
};

Spread SpreadOf(const std::vector<TakeoverRound>& rounds,
                const std::function<double(const TakeoverRound&)>& figure) {
  std::vector<double> values;
  for (const TakeoverRound& r : rounds) {
    if (figure(r) >= 0) values.push_back(figure(r));
  }
  Spread spread;
  if (values.empty()) return spread;
  std::sort(values.begin(), values.end());
  spread.median = values[(values.size() - 1) / 2];
  spread.max = values.back();
  spread.rounds = static_cast<int>(values.size());
  return spread;
}

std::string Ms(double ms) { return ms < 0 ? "-" : absl::StrFormat("%.0f", ms); }

struct TakeoverFigure {
  const char* name;
  std::function<double(const TakeoverRound&)> get;
};

std::vector<TakeoverFigure> TakeoverFigures() {
  return {{"owner_ms", [](const TakeoverRound& r) { return r.owner_ms; }},
          {"registered_ms", [](const TakeoverRound& r) { return r.registered_ms; }},
          {"first_commit_ms", [](const TakeoverRound& r) { return r.first_commit_ms; }},
          {"open_ended_ms", [](const TakeoverRound& r) { return r.driven_ms; }}};
}

}  // namespace

double HaCommitFloorMs(const LogPoint& p) {
  const double decision = p.log == "etcd" ? p.etcd_txn.p50_ms : p.result.fsync.p50_ms;
  return 2 * p.rtt.p50_ms + p.result.fsync.p50_ms + decision;
}

double RttAndEtcdWriteMs(const LogPoint& p) { return 2 * p.rtt.p50_ms + p.etcd_txn.p50_ms; }

void PrintHaPointHeader(std::FILE* out) {
  std::fprintf(out,
               "                  | floor p50, ms          | Commit call, ms (x: multiple of the "
               "floor)     | whole txn, ms   | CPU ms per transaction        | CPU busy\n"
               "log   cli    tx/s |  fsync    RTT etcd-txn |  floor    p50    p95    p99    max  "
               "xp50  xp99 |    p50    p99   | client  coord   agents   etcd | bench/all\n");
}

void PrintHaPoint(const HaReport& report, const LogPoint& point, std::FILE* out) {
  const PointResult& p = point.result;
  const double floor = HaCommitFloorMs(point);
  std::fprintf(out,
               "%-4s %4d %7.0f | %6.3f %6.3f %8.3f | %6.2f %6.2f %6.2f %6.2f %6.1f %5.1f %5.1f | "
               "%6.2f %6.2f   | %6.3f %6.3f %8.3f %6.3f | %3.0f%%/%3.0f%%\n",
               point.log.c_str(), p.point.clients, p.tx_per_second(), p.fsync.p50_ms,
               point.rtt.p50_ms, point.etcd_txn.p50_ms, floor, p.commit.p50_ms, p.commit.p95_ms,
               p.commit.p99_ms, p.commit.max_ms, Ratio(p.commit.p50_ms, floor),
               Ratio(p.commit.p99_ms, floor), p.txn.p50_ms, p.txn.p99_ms,
               PerTxMs(p.client_cpu_s, p.committed), PerTxMs(p.coordinator_cpu_s, p.committed),
               PerTxMs(p.agents_cpu_s, p.committed), point.etcd_cpu_ms_per_tx,
               100 * Busy(report, point), 100 * p.machine_busy);
  if (p.failed > 0) {
    std::fprintf(out, "     %lld failed; first: %s\n", static_cast<long long>(p.failed),
                 p.first_failure.c_str());
  }
}

void PrintHaReport(const HaReport& report, std::FILE* out) {
  std::fprintf(out, "ha_bench at %s, commit %s, %s (%s), %d CPUs, load %s -> %s, %.0f s\n",
               report.started_utc.c_str(), report.commit.c_str(), report.host.c_str(),
               report.kernel.c_str(), report.cpus, report.load_before.c_str(),
               report.load_after.c_str(), report.wall_seconds);
  std::fprintf(out, "flags: %s\n", report.flags.empty() ? "(none)" : report.flags.c_str());
  std::fprintf(
      out, "workload: plain 2PC transfers across 3 agents, %.1f s warm-up + %.1f s per point%s\n",
      report.warmup_seconds, report.point_seconds,
      report.smoke ? " (smoke: the figures mean nothing)" : "");
  std::fprintf(out,
               "floors with the daemons idle, between points: write(%dB)+fdatasync p50 %.3f ms "
               "p99 %.3f; gRPC RTT p50 %.3f ms p99 %.3f\n",
               report.fsync_record_bytes, report.fsync.p50_ms, report.fsync.p99_ms,
               report.rtt.p50_ms, report.rtt.p99_ms);
  std::fprintf(out,
               "  etcd (%d members on this machine): fenced put of %d B p50 %.3f ms p99 %.3f "
               "(%zu samples); linearizable read p50 %.3f ms p99 %.3f\n",
               report.etcd_members, report.etcd_value_bytes, report.etcd_txn.p50_ms,
               report.etcd_txn.p99_ms, report.etcd_txn.samples, report.etcd_read.p50_ms,
               report.etcd_read.p99_ms);
  std::fprintf(out,
               "Commit floor: 2 RTT + agents' fsync + the decision (wal: one more fsync, "
               "sampled during the point; etcd: one fenced etcd put)\n\n");
  PrintHaPointHeader(out);
  for (const LogPoint& point : report.points) PrintHaPoint(report, point, out);

  std::fprintf(out, "\netcd against wal, same run:\n");
  for (const LogPoint& wal : report.points) {
    const LogPoint* etcd = wal.log == "wal" ? Partner(report, wal) : nullptr;
    if (etcd == nullptr) continue;
    const PointResult& w = wal.result;
    const PointResult& e = etcd->result;
    std::fprintf(out,
                 "  %2d client(s): Commit p50 %.2f ms vs %.2f (%.2fx), p99 %.2f vs %.2f (%.2fx); "
                 "txn p50 %.2f vs %.2f (%.2fx); %.0f vs %.0f tx/s (%.2fx)\n",
                 w.point.clients, e.commit.p50_ms, w.commit.p50_ms,
                 Ratio(e.commit.p50_ms, w.commit.p50_ms), e.commit.p99_ms, w.commit.p99_ms,
                 Ratio(e.commit.p99_ms, w.commit.p99_ms), e.txn.p50_ms, w.txn.p50_ms,
                 Ratio(e.txn.p50_ms, w.txn.p50_ms), e.tx_per_second(), w.tx_per_second(),
                 Ratio(e.tx_per_second(), w.tx_per_second()));
    std::fprintf(out,
                 "               etcd Commit p50 = %.2fx (2 RTT + 1 etcd write = %.2f ms), "
                 "%.2fx (2 RTT + fsync + etcd write = %.2f ms)\n",
                 Ratio(e.commit.p50_ms, RttAndEtcdWriteMs(*etcd)), RttAndEtcdWriteMs(*etcd),
                 Ratio(e.commit.p50_ms, HaCommitFloorMs(*etcd)), HaCommitFloorMs(*etcd));
    std::fprintf(out,
                 "               etcd per transaction: %.2f writes (revisions), %.2f ms of CPU "
                 "(all members; wal point: %.2f ms, etcd idle but for leases and heartbeats)\n",
                 etcd->etcd_writes_per_tx, etcd->etcd_cpu_ms_per_tx, wal.etcd_cpu_ms_per_tx);
  }

  if (!report.takeover.has_value()) return;
  const TakeoverResult& t = *report.takeover;
  std::fprintf(out,
               "\ntakeover: kill -9 of the owner of the txid space, a standby waiting, %d clients "
               "running through the registry; ms from the kill.\n"
               "--registry_ttl=%.0fs: the dead owner's lease expires at most that long after "
               "its last renewal (renewed every third of it), which bounds the owner column; the "
               "rest follows it.\n",
               report.takeover_clients, report.registry_ttl_seconds);
  std::fprintf(out,
               "round  open at kill | owner key  registered  first commit  open ended | "
               "failed  machine busy\n");
  for (size_t i = 0; i < t.rounds.size(); ++i) {
    const TakeoverRound& r = t.rounds[i];
    std::fprintf(out, "%5zu  %12d | %9s  %10s  %12s  %10s | %6lld  %11.0f%%\n", i + 1,
                 r.open_at_kill, Ms(r.owner_ms).c_str(), Ms(r.registered_ms).c_str(),
                 Ms(r.first_commit_ms).c_str(), Ms(r.driven_ms).c_str(),
                 static_cast<long long>(r.failed), 100 * r.machine_busy);
  }
  std::vector<Spread> spreads;
  for (const TakeoverFigure& f : TakeoverFigures()) spreads.push_back(SpreadOf(t.rounds, f.get));
  std::fprintf(out, "median              | %9s  %10s  %12s  %10s |\n",
               Ms(spreads[0].median).c_str(), Ms(spreads[1].median).c_str(),
               Ms(spreads[2].median).c_str(), Ms(spreads[3].median).c_str());
  std::fprintf(out, "max                 | %9s  %10s  %12s  %10s |\n", Ms(spreads[0].max).c_str(),
               Ms(spreads[1].max).c_str(), Ms(spreads[2].max).c_str(), Ms(spreads[3].max).c_str());
  std::fprintf(out,
               "owner key: another process took the space; registered: the registry names it; "
               "first commit: a transfer it began committed; open ended: the last transaction "
               "the dead owner had decided COMMIT and not finished was driven to its end (its "
               "keys deleted; '-' when none was open, over %d of %zu rounds). %lld transfers "
               "committed, %lld did not.\n",
               spreads[3].rounds, t.rounds.size(), static_cast<long long>(t.committed),
               static_cast<long long>(t.failed));
}

absl::Status WriteHaJson(const HaReport& report, const std::string& path) {
  std::string json = "{\n";
  absl::StrAppend(
      &json,
      absl::StrFormat(
          "  \"started_utc\": %s, \"commit\": %s, \"flags\": %s, \"host\": %s, \"kernel\": %s,\n"
          "  \"cpus\": %d, \"dir\": %s, \"smoke\": %s, \"warmup_s\": %.3f, \"point_s\": %.3f,\n"
          "  \"load_before\": %s, \"load_after\": %s, \"wall_s\": %.1f, \"etcd_members\": %d,\n"
          "  \"registry_ttl_s\": %.3f, \"fsync_record_bytes\": %d, \"etcd_value_bytes\": %d,\n",
          JsonString(report.started_utc), JsonString(report.commit), JsonString(report.flags),
          JsonString(report.host), JsonString(report.kernel), report.cpus, JsonString(report.dir),
          report.smoke ? "true" : "false", report.warmup_seconds, report.point_seconds,
          JsonString(report.load_before), JsonString(report.load_after), report.wall_seconds,
          report.etcd_members, report.registry_ttl_seconds, report.fsync_record_bytes,
          report.etcd_value_bytes));
  absl::StrAppend(&json, "  \"floor_fsync_idle_ms\": ", JsonStats(report.fsync), ",\n",
                  "  \"floor_rtt_ms\": ", JsonStats(report.rtt), ",\n",
                  "  \"floor_etcd_txn_ms\": ", JsonStats(report.etcd_txn), ",\n",
                  "  \"floor_etcd_read_ms\": ", JsonStats(report.etcd_read), ",\n",
                  "  \"points\": [\n");
  std::vector<std::string> points;
  for (const LogPoint& point : report.points) {
    const PointResult& p = point.result;
    std::string out = absl::StrFormat(
        "    {\"log\": %s, \"mode\": \"%s\", \"branches\": %d, \"clients\": %d, "
        "\"seconds\": %.3f, \"committed\": %d, \"failed\": %d, \"tx_per_s\": %.1f,\n",
        JsonString(point.log), ModeName(p.point.mode), p.point.branches, p.point.clients, p.seconds,
        p.committed, p.failed, p.tx_per_second());
    if (!p.first_failure.empty()) {
      absl::StrAppend(&out, "     \"first_failure\": ", JsonString(p.first_failure), ",\n");
    }
    absl::StrAppend(&out, "     \"floor_fsync_ms\": ", JsonStats(p.fsync), ",\n",
                    "     \"floor_rtt_ms\": ", JsonStats(point.rtt), ",\n",
                    "     \"floor_etcd_txn_ms\": ", JsonStats(point.etcd_txn), ",\n",
                    "     \"floor_etcd_read_ms\": ", JsonStats(point.etcd_read), ",\n",
                    "     \"commit_ms\": ", JsonStats(p.commit), ",\n",
                    "     \"txn_ms\": ", JsonStats(p.txn), ",\n",
                    "     \"begin_ms\": ", JsonStats(p.begin), ",\n",
                    "     \"execute_ms\": ", JsonStats(p.execute), ",\n");
    const double floor = HaCommitFloorMs(point);
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "     \"commit_floor_ms\": %.4f, \"commit_x_floor\": {\"p50\": %.3f, \"p99\": %.3f},\n"
            "     \"rtt2_etcd_write_ms\": %.4f, \"commit_p50_x_rtt2_etcd_write\": %.3f,\n"
            "     \"cpu_ms_per_tx\": {\"coordinator\": %.4f, \"agents\": %.4f, \"client\": "
            "%.4f, \"etcd\": %.4f}, \"etcd_writes_per_tx\": %.3f, \"cpu_busy\": %.3f, "
            "\"machine_busy\": %.3f}",
            floor, Ratio(p.commit.p50_ms, floor), Ratio(p.commit.p99_ms, floor),
            RttAndEtcdWriteMs(point), Ratio(p.commit.p50_ms, RttAndEtcdWriteMs(point)),
            PerTxMs(p.coordinator_cpu_s, p.committed), PerTxMs(p.agents_cpu_s, p.committed),
            PerTxMs(p.client_cpu_s, p.committed), point.etcd_cpu_ms_per_tx,
            point.etcd_writes_per_tx, Busy(report, point), p.machine_busy));
    points.push_back(std::move(out));
  }
  absl::StrAppend(&json, absl::StrJoin(points, ",\n"), "\n  ]");
  if (report.takeover.has_value()) {
    const TakeoverResult& t = *report.takeover;
    absl::StrAppend(&json, absl::StrFormat(",\n  \"takeover\": {\"clients\": %d, \"committed\": "
                                           "%d, \"failed\": %d,\n    \"rounds\": [\n",
                                           report.takeover_clients, t.committed, t.failed));
    std::vector<std::string> rounds;
    for (const TakeoverRound& r : t.rounds) {
      rounds.push_back(absl::StrFormat(
          "      {\"old_pid\": %d, \"new_pid\": %d, \"old_epoch\": %d, \"new_epoch\": %d, "
          "\"open_at_kill\": %d, \"owner_ms\": %.1f, \"registered_ms\": %.1f, "
          "\"first_commit_ms\": %.1f, \"open_ended_ms\": %.1f, \"failed\": %d, "
          "\"machine_busy\": %.3f}",
          r.old_pid, r.new_pid, r.old_epoch, r.new_epoch, r.open_at_kill, r.owner_ms,
          r.registered_ms, r.first_commit_ms, r.driven_ms, r.failed, r.machine_busy));
    }
    absl::StrAppend(&json, absl::StrJoin(rounds, ",\n"), "\n    ]");
    for (const TakeoverFigure& f : TakeoverFigures()) {
      const Spread s = SpreadOf(t.rounds, f.get);
      absl::StrAppend(&json, absl::StrFormat(",\n    \"%s\": {\"median\": %.1f, \"max\": %.1f, "
                                             "\"rounds\": %d}",
                                             f.name, s.median, s.max, s.rounds));
    }
    absl::StrAppend(&json, "}");
  }
  absl::StrAppend(&json, "\n}\n");
  std::ofstream file(path, std::ios::trunc);
  file << json;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace txcoord::bench
