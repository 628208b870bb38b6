// The peer that txn_bench's 2pc:3 point is compared with: a client that
// runs PostgreSQL's native two-phase commit by hand across three services'
// databases, one PostgreSQL server each, with no durable decision log of
// its own. Each transfer is txn_bench's, as SQL: on every server at once
// (libpq's asynchronous API, one connection per server per client),
//
//   BEGIN; UPDATE accounts SET balance = balance + d WHERE id = r
//   PREPARE TRANSACTION 'gid'
//   COMMIT PREPARED 'gid'
//
// where the first server pays 2 and the others receive 1, and every client
// cycles through rows of its own, so no transfer waits for another's lock.
//
//   absl::Status ready = CreatePgAccounts(targets, /*clients=*/64);
//   absl::StatusOr<PgPointResult> r = RunPgPoint(targets, 16, warmup, measure, &stop);
#ifndef TXCOORD_BENCH_PG2PC_WORKLOAD_H_
#define TXCOORD_BENCH_PG2PC_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/latency_stats.h"

namespace txcoord::bench {

// What the clients connect to and whose CPU is counted. Plain value.
struct PgTargets {
  std::vector<std::string> conninfo;  // one libpq connection string per service (branch)
  int rows_per_client = 64;
  // CPU seconds used so far by all the servers together.
  std::function<absl::StatusOr<double>()> servers_cpu;
};

struct PgPointResult {
  int clients = 0;
  int branches = 0;
  double seconds = 0;     // length of the measured window
  int64_t committed = 0;  // transfers that ended inside the window
  int64_t failed = 0;     // anything else (should be 0: see first_failure)
  std::string first_failure;
  LatencyStats txn;              // first BEGIN sent to the last COMMIT PREPARED answered
  LatencyStats commit;           // first PREPARE sent to the last COMMIT PREPARED answered
  LatencyStats update;           // the BEGIN; UPDATE round, all branches
  LatencyStats prepare;          // the PREPARE TRANSACTION round
  LatencyStats commit_prepared;  // the COMMIT PREPARED round
  // CPU seconds over the window: all servers, this process (the clients).
  double servers_cpu_s = 0;
  double client_cpu_s = 0;
  double machine_busy = 0;  // share of the whole machine's CPU time that was busy
  // Floor measured just before and just after the point (by the caller):
  // a libpq round trip, and a small append + fdatasync.
  LatencyStats rtt;
  LatencyStats fsync;

  double tx_per_second() const {
    return seconds > 0 ? static_cast<double>(committed) / seconds : 0;
  }
};

// Creates `accounts(id integer PRIMARY KEY, balance bigint NOT NULL)` on
// every server, with clients * rows_per_client rows of balance 1000 each.
absl::Status CreatePgAccounts(const PgTargets& targets, int clients);

// Runs `clients` threads for warmup + measure, then lets each finish its
// transfer; counts those that end inside the measured window. A client
// ends early on a connection failure or when `stop` becomes true (then
// the window is cut short and the result says so in `seconds`). Failed
// transfers are counted, not returned.
absl::StatusOr<PgPointResult> RunPgPoint(const PgTargets& targets, int clients,
                                         Clock::duration warmup, Clock::duration measure,
                                         const std::atomic<bool>& stop);

// Money is conserved (the balances of all servers add up to
// `expected_total`) and no transaction is left prepared on any server.
// DATA_LOSS if either fails.
absl::Status CheckPgBank(const PgTargets& targets, int64_t expected_total);

// An empty query to `conninfo`, one at a time, for `duration` (and at least
// 10 times): the round trip floor of one libpq call on loopback.
absl::StatusOr<std::vector<Clock::duration>> MeasurePgRoundTrip(const std::string& conninfo,
                                                                Clock::duration duration);

// CHECKPOINT on every server, so that no point pays for the previous
// one's dirty pages.
absl::Status CheckpointAll(const PgTargets& targets);

// The first server's version and durability settings, for the report:
// "PostgreSQL 15.4, fsync=on, full_page_writes=on, ...".
absl::StatusOr<std::string> PgDescription(const PgTargets& targets);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_PG2PC_WORKLOAD_H_
