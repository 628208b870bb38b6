// The machine's floors for one transaction's critical path, measured in the
// benchmark's own run: the latency of a small durable append on the disk
// that holds the data, and of a trivial gRPC unary round trip on loopback;
// and, as a yardstick for what the RPC layer costs, the CPU of a bare TCP
// round trip on loopback.
// A commit can be no faster than the RTTs and fsyncs it must wait for in
// sequence; txn_bench reports its latencies as multiples of these.
#ifndef TXCOORD_BENCH_FLOORS_H_
#define TXCOORD_BENCH_FLOORS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/latency_stats.h"

namespace txcoord::bench {

// Appends `record_bytes` with write(2) and fdatasync(2), one at a time, to a
// fresh file in `dir` for `duration` (and at least 10 times); the file is
// removed afterwards. The same measurement as wal_bench's floor.
absl::StatusOr<std::vector<Clock::duration>> MeasureFsync(const std::string& dir, int record_bytes,
                                                          Clock::duration duration);

// The same append + fdatasync, but only one every `interval`, from `start`
// until `end`: samples the disk while a benchmark point runs, at a rate low
// enough (100/s at 10 ms) not to add much to the disk's load. The disk of a
// shared machine swings between fast and slow from one second to the next,
// so only a floor sampled in the same seconds as the point is a fair
// yardstick for it. Blocks until `end`.
absl::StatusOr<std::vector<Clock::duration>> SampleFsync(const std::string& dir, int record_bytes,
                                                         Clock::time_point start,
                                                         Clock::time_point end,
                                                         Clock::duration interval);

// CPU time that the counted round trips cost both ends together: this
// process (all its threads: the caller's others must be idle meanwhile)
// and the server's. Added to, so that several measurements sum up.
struct RoundTripCpu {
  double seconds = 0;
  int64_t calls = 0;
  double ms_per_call() const { return calls == 0 ? 0 : 1e3 * seconds / calls; }
};

// Calls grpc.health.v1.Health/Check on `target` ("host:port") with the
// synchronous API, one call at a time, for `duration` (and at least 10
// times), over a channel of its own. The first calls, which connect, are
// not counted. With `cpu`, also adds the CPU of both ends (the server is
// process `server_pid`) to it: the CPU floor of one RPC.
absl::StatusOr<std::vector<Clock::duration>> MeasureGrpcRoundTrip(const std::string& target,
                                                                  Clock::duration duration,
                                                                  pid_t server_pid = 0,
                                                                  RoundTripCpu* cpu = nullptr);

// A request of `request_bytes` and an answer of `response_bytes` over one
// loopback TCP connection, blocking sockets with TCP_NODELAY and a thread at
// each end (the model of a server that runs each call on the thread that
// read it), one at a time for `duration` (and at least 100 times); adds the
// two threads' CPU to `cpu`. A yardstick for an RPC's CPU: what one simple
// transport costs on this machine (not a bound: others, such as Unix
// sockets or an event loop at each end, may cost less). Both sizes must
// be at least 1; an end silent for 5 s fails the measurement.
absl::StatusOr<std::vector<Clock::duration>> MeasureTcpRoundTrip(Clock::duration duration,
                                                                 RoundTripCpu* cpu,
                                                                 int request_bytes = 150,
                                                                 int response_bytes = 60);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_FLOORS_H_
