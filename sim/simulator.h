// One deterministic simulation run of the whole system: the real coordinator
// runtime, real participants on SQLite, clients running bank transfers, under
// a seeded schedule of message loss, duplication, delay and reordering,
// partitions, crashes and restarts of every node, log failures and an
// operator's actions; then a quiet phase (all nodes up, a reliable network)
// and the checker.
//
//   SimOptions options;
//   options.seed = 42;
//   SimResult result = RunSimulation(options);
//   if (!result.ok) std::cout << FormatReport(result, options);  // how to replay
#ifndef TXCOORD_SIM_SIMULATOR_H_
#define TXCOORD_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sim/client.h"
#include "sim/network.h"

namespace txcoord::sim {

struct FaultOptions {
  double loss = 0.02;       // per message
  double duplicate = 0.02;  // per idempotent request
  double slow = 0.02;       // per message: held back up to slow_max (reordering)
  absl::Duration slow_max = absl::Milliseconds(300);
  // Mean simulated time between crashes of the node (each node on its
  // own); zero: never.
  absl::Duration coordinator_mtbf = absl::Seconds(3);
  absl::Duration participant_mtbf = absl::Seconds(3);
  absl::Duration min_down = absl::Milliseconds(1);
  absl::Duration max_down = absl::Milliseconds(300);
  absl::Duration partition_mtbf = absl::Seconds(2);  // zero: never
  absl::Duration max_partition = absl::Milliseconds(300);
  double log_sync_failure = 0.001;  // per coordinator fdatasync: fail-stop
  // Mean simulated time between two actions of an operator (zero: none):
  // each lists the open transactions and retries phase 2 of a COMMITTING
  // one, aborts an undecided one, or repairs a COMMITTING one's branch by
  // hand (a heuristic decision at its agent matching the coordinator's
  // COMMIT, then mark-done), as docs/operations.md tells.
  absl::Duration operator_mtbf = absl::Seconds(1);
  // With etcd_log. The coordinator that owns the space stops (SIGSTOP) for
  // a while, often past its lease, and then goes on with what it had in
  // memory; zero mtbf: never.
  absl::Duration pause_mtbf = absl::Seconds(4);
  absl::Duration min_pause = absl::Milliseconds(100);
  absl::Duration max_pause = absl::Seconds(4);
  // etcd answers nothing for a while (leases keep counting down).
  absl::Duration etcd_outage_mtbf = absl::Seconds(10);
  absl::Duration max_etcd_outage = absl::Milliseconds(1500);
  // etcd's space quota alarm for up to max_space_alarm (an operator then
  // compacts and disarms it): puts fail, reads, deletes and keep-alives go.
  absl::Duration space_alarm_mtbf = absl::Seconds(15);
  absl::Duration max_space_alarm = absl::Milliseconds(1500);
  // The owner alone cannot reach etcd for up to max_etcd_cut_off (clients
  // and participants still reach it): often past its lease, while a
  // standby takes the space.
  absl::Duration etcd_cut_off_mtbf = absl::Seconds(8);
  absl::Duration max_etcd_cut_off = absl::Milliseconds(2500);
  // Chance a write to etcd is applied but its answer is lost.
  double etcd_lost_answer = 0.01;
  // Chance a request goes to the owner before (a stale view of the registry).
  double stale_route = 0.05;
};

struct SimOptions {
  uint64_t seed = 1;
  int transactions = 250;
  int participants = 3;
  int clients = 6;
  FaultOptions faults;
  WorkloadOptions workload;
  size_t log_rotate_records = 128;  // 0: the log never rotates
  // The coordinator's decision log on an etcd model instead of its WAL:
  // the daemon's EtcdDecisionLog on one MemoryEtcd, and
  // `coordinator_processes` processes for the space, one owner at a time
  // under a lease of `lease_ttl`, the others standbys that take over.
  bool etcd_log = false;
  int coordinator_processes = 2;
  absl::Duration lease_ttl = absl::Seconds(1);
  // Chance that a start of an agent defers the votes of early prepares
  // (ParticipantNodeOptions::deferred_votes).
  double deferred_votes = 0;
  // An agent rolls back an unprepared branch idle this long (the reaper).
  absl::Duration agent_idle_timeout = absl::Seconds(10);
  // Transactions whose details the coordinator keeps after they end
  // (EngineOptions::finished_cache); small, a txid is soon answered from
  // the retained outcomes alone.
  size_t finished_cache = 10000;
  // The fault phase ends when the last transaction has started; with this,
  // every node then crashes at once (transactions still in flight).
  bool crash_all_at_end = true;
  // After the fault phase, the system must be at rest within this long.
  absl::Duration quiet_limit = absl::Seconds(120);
  absl::Duration fault_phase_limit = absl::Hours(1);
  // Deliberate bugs, to prove the checker finds them (and the client's
  // WorkloadOptions::bug_deadline_means_aborted).
  bool bug_reply_before_durable = false;  // coordinator log: durable before its fdatasync
  bool bug_vote_before_durable = false;   // participant: YES before its prepare is durable
  bool bug_no_resolver = false;           // participants never ask about in-doubt branches
  // The operator repairing a COMMITTING transaction's branch aborts it at
  // its agent instead of committing it, then marks it done.
  bool bug_operator_guesses_abort = false;
  // With etcd_log: the decision log writes without the ownership fence, so
  // an owner that lost the space (paused past its lease) still decides.
  bool bug_unfenced_log = false;
  size_t trace_keep = 300;   // trace lines kept for a report
  bool trace_all = false;    // print every trace line as it happens
  std::string trace_filter;  // with trace_all: only lines containing this
  bool quiet_logs = true;    // silence the daemons' own logging (TXLOG)
};

struct SimResult {
  uint64_t seed = 0;
  bool ok = true;
  std::vector<std::string> violations;
  std::vector<std::string> trace_tail;
  uint64_t trace_hash = 0;  // equal for equal runs

  Client::Stats clients;  // summed over all clients
  uint64_t coordinator_crashes = 0;
  uint64_t participant_crashes = 0;
  uint64_t partitions = 0;
  uint64_t log_failures = 0;
  uint64_t log_rotations = 0;
  uint64_t appender_log_batches = 0;  // written by the thread that appended
  uint64_t coordinator_epochs = 0;
  // Operator actions the coordinator (and, for a repair, the agent) accepted.
  uint64_t operator_retries = 0;
  uint64_t operator_aborts = 0;
  uint64_t operator_repairs = 0;  // branches marked done
  // Idle branches an agent rolled back on hearing ABORTED when it asked
  // (their Abort was lost).
  uint64_t asked_rollbacks = 0;
  // With etcd_log.
  uint64_t takeovers = 0;  // the space taken, after the first time
  uint64_t pauses = 0;     // of the owner
  uint64_t etcd_outages = 0;
  uint64_t etcd_cut_offs = 0;  // of the owner alone
  uint64_t space_alarms = 0;
  uint64_t fail_stops = 0;  // processes that stopped: the space lost, or the log failed
  NetworkStats network;
  uint64_t events = 0;
  absl::Duration fault_phase;   // simulated
  absl::Duration time_to_rest;  // simulated, from the start of the quiet phase
};

SimResult RunSimulation(const SimOptions& options);

// The flags that replay this run, e.g. "--seed=7 --transactions=250 ...".
std::string ReplayFlags(const SimOptions& options);
// Statistics, violations, how to replay, and the trace tail if not ok.
std::string FormatReport(const SimResult& result, const SimOptions& options);

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_SIMULATOR_H_
