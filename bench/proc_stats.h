// What the kernel says a process has cost, read from /proc: CPU time (user
// plus system, all threads) and resident memory. The benchmarks divide
// deltas of these by the work done in between (CPU per transaction, bytes
// per open transaction).
#ifndef TXCOORD_BENCH_PROC_STATS_H_
#define TXCOORD_BENCH_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace txcoord::bench {

// utime + stime of every thread of `pid` (/proc/PID/stat), in seconds.
// Resolution is one clock tick (10 ms on Linux): read it over seconds of
// work, not per call. NOT_FOUND once the process is gone.
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);

// The same for `pid` and all its descendants: the live ones, and those
// that have exited and been reaped (cutime + cstime). For a server that
// forks a process per connection (PostgreSQL), whose connections come and
// go. Scans /proc: read it once per measured window, not per call.
absl::StatusOr<double> ProcessTreeCpuSeconds(pid_t pid);

// CPU time of the calling process (getrusage), microsecond resolution.
double SelfCpuSeconds();
// CPU time of the calling thread, the same way.
double ThreadCpuSeconds();

// VmRSS of `pid` (/proc/PID/status), in bytes.
absl::StatusOr<int64_t> ResidentBytes(pid_t pid);

// Cumulative CPU time of the whole machine (first line of /proc/stat), in
// seconds: busy (everything but idle and iowait) and total, over all CPUs.
struct MachineCpu {
  double busy = 0;
  double total = 0;
};
absl::StatusOr<MachineCpu> MachineCpuSeconds();

// The processes whose parent is this one and whose command name is `comm`
// (e.g. "etcd"), as /proc lists them now.
std::vector<pid_t> ChildProcesses(const std::string& comm);

// The first three fields of /proc/loadavg ("0.52 0.61 0.70"): tells a
// reader whether something else was competing for the CPUs during a run.
std::string LoadAverage();

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_PROC_STATS_H_
