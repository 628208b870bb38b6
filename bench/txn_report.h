// txn_bench's results, as a table for people and as JSON for the plot
// script and for comparing runs: every latency next to its floor (the RTTs
// and fsyncs that the commit must wait for in sequence, measured in the
// same run) and the ratio between the two.
#ifndef TXCOORD_BENCH_TXN_REPORT_H_
#define TXCOORD_BENCH_TXN_REPORT_H_

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/latency_stats.h"
#include "bench/open_txn_memory.h"
#include "bench/txn_workload.h"

namespace txcoord::bench {

// Everything one run measured, and under which conditions. Plain value.
struct RunReport {
  std::string started_utc;  // "2024-05-01T12:00:00Z"
  std::string commit;       // as given by --commit (the source tree's version)
  std::string flags;        // the command line
  std::string host;
  std::string kernel;
  int cpus = 0;
  std::string dir;  // where the daemons' data and the fsync floor file lived
  bool smoke = false;
  bool branches_at_once = false;  // --branches_at_once
  bool name_branches = true;      // --name_branches
  uint32_t reserve_txids = 0;     // --reserve_txids
  bool framed_ports = false;      // --framed_ports
  double warmup_seconds = 0;
  double point_seconds = 0;
  std::string load_before;  // /proc/loadavg
  std::string load_after;
  double wall_seconds = 0;  // the whole run

  // All idle floor samples of the run together (each point also has its
  // own, and an fsync sampled while it ran).
  LatencyStats fsync;
  LatencyStats rtt;
  int fsync_record_bytes = 0;
  // CPU of one RTT-floor call, client and server together (ms): what any
  // gRPC call costs the machine at the least.
  double rpc_cpu_ms = 0;
  // CPU of a bare loopback TCP round trip, both ends (MeasureTcpRoundTrip):
  // a yardstick for how much of rpc_cpu_ms gRPC's own machinery adds.
  double tcp_cpu_ms = 0;

  std::vector<PointResult> points;
  std::optional<OpenTxnMemory> memory;
};

// What the Commit call must wait for in sequence: 2 RTT + 2 fsync for plain
// 2PC (client→coordinator, Prepare fan-out, the agents' prepare fsync, the
// COMMIT record's fsync); RTT + fsync for early prepare (only the COMMIT
// record) and one-phase (by the target's definition: the agent's fsync; the
// coordinator→agent hop is a second RTT that the floor leaves out).
double CommitFloorMs(Mode mode, double rtt_ms, double fsync_ms);
// The same with the medians of the floor measured around `point`.
double CommitFloorMs(const PointResult& point);

// gRPC calls one transaction of `point` makes: Begin (none when txids are
// reserved) and Commit, and per branch an Execute, the Enlist it makes,
// the coordinator's Prepare (2pc only) and its phase-2 Commit (or
// CommitOnePhase).
int RpcsPerTransaction(const RunReport& report, const Point& point);
// Transactions/s that the run's CPUs could carry if they did nothing but
// those calls, each at the RTT floor's CPU cost; 0 if not measured.
double RpcCpuCeiling(const RunReport& report, const Point& point);

// The whole transaction's sequential floor: RTT for Begin (unless txids are
// reserved), per branch 2 RTT (Execute and the Enlist it makes) plus an
// fsync with early prepare, and the commit floor.
double TxnFloorMs(const RunReport& report, const PointResult& point);

// The conditions, the floors and one row per point; then the memory figure.
void PrintReport(const RunReport& report, std::FILE* out);

// One table row (also printed as each point finishes).
void PrintRow(const RunReport& report, const PointResult& point, std::FILE* out);
void PrintHeader(std::FILE* out);

absl::Status WriteJson(const RunReport& report, const std::string& path);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_TXN_REPORT_H_
