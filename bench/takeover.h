// How long a txid space on etcd (--log=etcd, docs/ha.md) is without a
// coordinator when its owner dies: closed-loop transfers run through the
// registry while the owner is killed with kill -9, again and again, and each
// time the clock runs from the kill until a standby owns the space, until
// it is registered, until the first Commit of a transaction it began, and
// until the transactions the dead owner had decided but not finished are
// driven to their end.
//
//   TakeoverSetup setup = ...;  // the registry, the agents, kill and start_standby
//   absl::StatusOr<TakeoverResult> r = MeasureTakeovers(setup, /*rounds=*/5);
#ifndef TXCOORD_BENCH_TAKEOVER_H_
#define TXCOORD_BENCH_TAKEOVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/agent_client.h"

namespace txcoord::bench {

struct TakeoverSetup {
  std::string registry_url;  // etcd://HOST:PORT,...: where the space and its owner live
  std::string space;         // the --cluster-id of the owner and its standbys
  // Each transfer touches every agent (one UPDATE each). Not owned.
  std::vector<AgentClient*> agents;
  int clients = 8;
  int rows_per_client = 64;  // rows 1..clients*rows_per_client must exist at every agent
  // Commits of the current owner's transactions before it is killed: the
  // workload runs at full speed when the clock starts.
  int commits_before_kill = 50;
  // How long each round may take before the takeover counts as failed.
  absl::Duration round_timeout = absl::Seconds(30);
  // SIGKILL to the coordinator process with this pid, waiting until it is
  // gone; an error if it is not one of the space's processes.
  std::function<absl::Status(int64_t pid)> kill;
  // Starts one more coordinator process for the space and returns once it
  // waits as a standby.
  std::function<absl::Status()> start_standby;
};

// One kill. Times are milliseconds from the SIGKILL; -1 where not measured.
struct TakeoverRound {
  int64_t old_pid = 0;
  int64_t new_pid = 0;
  uint64_t old_epoch = 0;
  uint64_t new_epoch = 0;
  // Transactions the dead owner had decided COMMIT and not yet ended (their
  // keys in the space's log at the kill).
  int open_at_kill = 0;
  double owner_ms = -1;         // another process holds the space's owner key
  double registered_ms = -1;    // the registry names that process for the space
  double first_commit_ms = -1;  // a Commit of a transaction it began returned COMMITTED
  double driven_ms = -1;        // the last of open_at_kill ended (its keys deleted); -1 if none
  // Transfers that ended otherwise than committed, from this kill until
  // the next (in flight at the kill, or begun on the dead owner).
  int64_t failed = 0;
  double machine_busy = 0;  // share of all CPUs busy from the kill to the end of the round
};

struct TakeoverResult {
  std::vector<TakeoverRound> rounds;
  int64_t committed = 0;  // transfers committed over the whole measurement
  int64_t failed = 0;
};

// Runs setup.clients transfer threads through the registry and kills the
// space's owner `rounds` times, starting a new standby after each takeover.
// The space must have an owner and one standby. An error if the owner
// cannot be found or killed, or a round times out (the message says which
// step did not happen).
absl::StatusOr<TakeoverResult> MeasureTakeovers(const TakeoverSetup& setup, int rounds);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_TAKEOVER_H_
