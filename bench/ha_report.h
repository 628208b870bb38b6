// ha_bench's results, as a table for people and as JSON: the transfer
// workload with the coordinator's decision log in the local WAL and in etcd,
// run side by side, each latency next to the floors measured in the same
// run (fsync, gRPC round trip, one etcd write), and the takeover times.
#ifndef TXCOORD_BENCH_HA_REPORT_H_
#define TXCOORD_BENCH_HA_REPORT_H_

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/latency_stats.h"
#include "bench/takeover.h"
#include "bench/txn_workload.h"

namespace txcoord::bench {

// One point with one decision log. Plain value.
struct LogPoint {
  std::string log;  // "wal" or "etcd": the coordinator's --log
  // The workload's figures; its fsync is sampled while the point ran.
  PointResult result;
  // Idle floors measured just before and just after the point.
  LatencyStats rtt;        // gRPC round trip to this point's coordinator
  LatencyStats etcd_txn;   // a fenced etcd put (see etcd_floor.h)
  LatencyStats etcd_read;  // a linearizable etcd read
  // CPU of all etcd members per committed transaction, over the whole
  // point (warm-up and drain included, at the point's rate).
  double etcd_cpu_ms_per_tx = 0;
  // etcd writes (revisions) per committed transaction, counted the same way.
  double etcd_writes_per_tx = 0;
};

// What the Commit of a plain 2PC transaction waits for in sequence: the
// client's call and the Prepare fan-out (2 RTT), the agents' prepare fsync,
// then the decision: one more fsync with the WAL, one etcd write with etcd.
double HaCommitFloorMs(const LogPoint& point);
// 2 RTT + one etcd write: the etcd point's floor without the agents' fsync.
double RttAndEtcdWriteMs(const LogPoint& point);

// Everything one run measured, and under which conditions. Plain value.
struct HaReport {
  std::string started_utc;
  std::string commit;  // --commit
  std::string flags;   // the command line
  std::string host;
  std::string kernel;
  int cpus = 0;
  std::string dir;
  bool smoke = false;
  double warmup_seconds = 0;
  double point_seconds = 0;
  std::string load_before;  // /proc/loadavg
  std::string load_after;
  double wall_seconds = 0;
  int etcd_members = 0;
  double registry_ttl_seconds = 0;
  int fsync_record_bytes = 0;
  int etcd_value_bytes = 0;
  // Every idle floor sample of the run together.
  LatencyStats fsync;
  LatencyStats rtt;
  LatencyStats etcd_txn;
  LatencyStats etcd_read;
  std::vector<LogPoint> points;
  int takeover_clients = 0;
  std::optional<TakeoverResult> takeover;
};

void PrintHaPointHeader(std::FILE* out);
void PrintHaPoint(const HaReport& report, const LogPoint& point, std::FILE* out);
// The conditions, the floors, the points and their etcd/WAL ratios, the
// takeover rounds with their median and maximum.
void PrintHaReport(const HaReport& report, std::FILE* out);

absl::Status WriteHaJson(const HaReport& report, const std::string& path);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_HA_REPORT_H_
