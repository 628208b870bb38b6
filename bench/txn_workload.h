// The closed-loop transfer workload that txn_bench measures: each client
// thread runs one global transaction after another (Begin, one Execute per
// service, Commit) against real daemons, with rows of its own so that no two
// transactions ever wait for each other's locks: the figures measure the
// protocol, not contention.
//
//   absl::Status ready = CreateAccounts(agents, /*clients=*/64, /*rows_per_client=*/64);
//   absl::StatusOr<PointResult> r = RunPoint(targets, {Mode::kTwoPhase, 3, 16}, timing);
#ifndef TXCOORD_BENCH_TXN_WORKLOAD_H_
#define TXCOORD_BENCH_TXN_WORKLOAD_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/latency_stats.h"
#include "client/agent_client.h"
#include "client/client.h"

namespace txcoord::bench {

// How a transaction commits.
enum class Mode {
  kTwoPhase,      // plain 2PC: Commit sends Prepare to every branch (2+ branches)
  kEarlyPrepare,  // Execute(..., prepare=true): Commit only logs the decision
  kOnePhase,      // a single branch: Commit becomes CommitOnePhase at the agent
};

// "2pc", "early", "1pc": the names used by flags, tables and the JSON.
const char* ModeName(Mode mode);
bool ParseMode(const std::string& name, Mode* mode);

// One measured configuration.
struct Point {
  Mode mode = Mode::kTwoPhase;
  int branches = 3;  // services (agents) per transaction
  int clients = 1;   // concurrent closed-loop client threads
};

// Checks a point against the protocol: one-phase needs exactly one branch,
// plain 2PC at least two (with one it would silently be one-phase).
absl::Status ValidatePoint(const Point& point, int agents);

// What the clients talk to and whose CPU is counted. Not owned; the agents
// vector needs at least as many entries as the widest point's branches.
struct Targets {
  Client* coordinator = nullptr;
  std::vector<AgentClient*> agents;
  pid_t coordinator_pid = 0;
  std::vector<pid_t> agent_pids;
  int rows_per_client = 64;
  // The branches' Executes sent at once (Transaction::ExecuteAll) rather
  // than one after another; each branch's Execute latency is then the
  // whole round's.
  bool branches_at_once = false;
  // Executes ask agents to answer before the coordinator acknowledged the
  // branch, and Commit names the branches (as Transaction does).
  bool name_branches = true;
  // Where the floor's fsync samples are taken while a point runs (the
  // daemons' data directory: the same disk), and how big each append is.
  std::string floor_dir;
  int fsync_record_bytes = 137;
};

struct PointResult {
  Point point;
  double seconds = 0;     // length of the measured window
  int64_t committed = 0;  // transactions committed within the window
  int64_t failed = 0;     // anything else (should be 0: see first_failure)
  std::string first_failure;
  LatencyStats commit;   // the Commit call
  LatencyStats txn;      // Begin to the end of Commit
  LatencyStats begin;    // the Begin call
  LatencyStats execute;  // one Execute call (any branch)
  // CPU seconds over the window: the coordinator, all agents together, and
  // this process (the client threads and their gRPC).
  double coordinator_cpu_s = 0;
  double agents_cpu_s = 0;
  double client_cpu_s = 0;
  // Share of the whole machine's CPU time that was busy over the window,
  // whoever used it: next to the share this benchmark used, it shows how
  // much other work competed for the CPUs.
  double machine_busy = 0;
  // This point's floor. fsync: one small append + fdatasync every 10 ms
  // during the measured window (the disk of a shared machine swings between
  // fast and slow within seconds, so only the same seconds give a fair
  // yardstick; with many clients it also includes waiting behind the
  // benchmark's own fsyncs). fsync_idle and rtt: measured just before and
  // just after the point, with the daemons idle (filled in by the caller).
  LatencyStats fsync;
  LatencyStats fsync_idle;
  LatencyStats rtt;
  // Commits per 100 ms over the window, which began at window_start_unix
  // (seconds since the Unix epoch), or window_start_monotonic_raw on
  // CLOCK_MONOTONIC_RAW (the clock `perf record -k monotonic_raw` stamps
  // samples with): lets a profiler that sampled part of the window count
  // exactly the transactions it saw.
  double window_start_unix = 0;
  double window_start_monotonic_raw = 0;
  std::vector<int64_t> commits_per_100ms;

  double tx_per_second() const {
    return seconds > 0 ? static_cast<double>(committed) / seconds : 0;
  }
};

// Creates `accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)` at
// every agent with clients * rows_per_client rows (local autocommit). The
// table must not exist yet.
absl::Status CreateAccounts(const std::vector<AgentClient*>& agents, int clients,
                            int rows_per_client);

// Runs `point.clients` threads for warmup + measure, then lets them finish
// their transactions; counts those that end inside the measured window.
// Afterwards waits until phase 2 of every transaction has finished at the
// agents, so that the next point starts from quiet daemons. An error only
// if the daemons could not be read or drained; failed transactions are
// counted in the result.
absl::StatusOr<PointResult> RunPoint(const Targets& targets, const Point& point,
                                     Clock::duration warmup, Clock::duration measure);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_TXN_WORKLOAD_H_
