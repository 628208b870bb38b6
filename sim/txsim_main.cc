// txsim: runs the deterministic simulator over a range of seeds and reports
// every violation with the flags that replay it. See docs/testing.md.
//
//   txsim --runs=1000                    # seeds 1..1000
//   txsim --seed=4711 --trace            # replay one seed, every event
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "sim/simulator.h"

ABSL_FLAG(uint64_t, seed, 1, "first seed; runs use seed, seed+1, ...");
ABSL_FLAG(int, runs, 1, "number of runs (seeds)");
ABSL_FLAG(int, transactions, 250, "transactions per run");
ABSL_FLAG(int, participants, 3, "participants (agents)");
ABSL_FLAG(int, clients, 6, "concurrent clients");
ABSL_FLAG(double, loss, 0.02, "chance a message is lost");
ABSL_FLAG(double, duplicate, 0.02, "chance an idempotent request is delivered twice");
ABSL_FLAG(double, slow, 0.02, "chance a message is held back up to 300 ms (reordering)");
ABSL_FLAG(int, coordinator_mtbf_ms, 3000,
          "mean simulated ms between coordinator crashes; 0: never");
ABSL_FLAG(int, participant_mtbf_ms, 3000,
          "mean simulated ms between crashes of each participant; 0: never");
ABSL_FLAG(int, partition_mtbf_ms, 2000,
          "mean simulated ms between partitions of one node; 0: never");
ABSL_FLAG(double, log_sync_failure, 0.001, "chance a coordinator fdatasync fails (fail-stop)");
ABSL_FLAG(int, operator_mtbf_ms, 1000,
          "mean simulated ms between operator actions (retry, abort, repair a branch); 0: never");
ABSL_FLAG(double, short_commit_deadline, 0.15,
          "chance a Commit carries a deadline of at most 30 ms (often DEADLINE_EXCEEDED)");
ABSL_FLAG(double, settle_by_asking, 0.5,
          "chance a client settles a Commit past its deadline by asking GetTransaction, not "
          "calling Commit again (a short deadline always asks)");
ABSL_FLAG(double, early_prepare, 0.25, "chance a branch is prepared early (Execute prepare=true)");
ABSL_FLAG(double, named_branches, 0.5,
          "chance a transaction's Executes answer before their enlistment is acknowledged and "
          "its Commit names the branches");
ABSL_FLAG(double, reserved_txids, 0,
          "chance a transaction's txid comes from a block the client reserved (ReserveTxids), "
          "beginning at its first Enlist or Commit, instead of a Begin call");
ABSL_FLAG(double, signed_votes, 0,
          "chance a transaction that names its branches asks for signed votes with its early "
          "prepares and carries them in its Commit (agents with a key then send no Enlist)");
ABSL_FLAG(double, deferred_votes, 0,
          "chance each start of an agent defers the votes of early prepares named in Commit "
          "(answers first, sends the vote by Enlist once synced); otherwise it never does");
ABSL_FLAG(uint64_t, finished_cache, 10000,
          "transactions whose details the coordinator keeps after they end; small: ended txids "
          "are soon answered from the retained outcomes alone");
ABSL_FLAG(double, single_branch, 0.15, "chance a transaction has one branch (one-phase commit)");
ABSL_FLAG(double, client_abort, 0.05, "chance a client aborts instead of committing");
ABSL_FLAG(bool, split_execute, false, "write each branch in two Executes instead of one");
ABSL_FLAG(bool, abort_unknown, true,
          "clients call Abort after a Commit whose outcome they never heard");
ABSL_FLAG(int, max_step_gap_ms, 2, "the client's pause between two of its calls, up to this");
ABSL_FLAG(int, tx_timeout_ms, 5000, "the transaction timeout clients ask Begin for");
ABSL_FLAG(int, idle_timeout_ms, 10000, "agents roll back unprepared branches idle this long");
ABSL_FLAG(int, accounts, 32, "accounts per participant (fewer: more row-lock conflicts)");
ABSL_FLAG(bool, bug_reply_before_durable, false,
          "inject a bug: the coordinator answers COMMITTED before COMMIT is durable");
ABSL_FLAG(bool, bug_vote_before_durable, false,
          "inject a bug: participants vote YES before their prepare is durable");
ABSL_FLAG(bool, bug_no_resolver, false,
          "inject a bug: participants never ask the outcome of in-doubt branches");
ABSL_FLAG(bool, bug_operator_guesses_abort, false,
          "inject a bug: the operator repairing a COMMITTING branch aborts it at its agent");
ABSL_FLAG(bool, bug_deadline_means_aborted, false,
          "inject a bug: clients take a Commit's DEADLINE_EXCEEDED for ABORTED");
ABSL_FLAG(bool, etcd_log, false,
          "the coordinator's decision log on an etcd model, with standby coordinators that take "
          "over the space (owner crashes, pauses past the lease, etcd outages)");
ABSL_FLAG(int, coordinators, 2, "with --etcd_log: coordinator processes for the space");
ABSL_FLAG(int, lease_ttl_ms, 1000, "with --etcd_log: the owner's lease (whole seconds in etcd)");
ABSL_FLAG(int, pause_mtbf_ms, 4000,
          "with --etcd_log: mean simulated ms between pauses of the owner; 0: never");
ABSL_FLAG(int, max_pause_ms, 4000, "with --etcd_log: the longest pause");
ABSL_FLAG(int, etcd_outage_mtbf_ms, 10000,
          "with --etcd_log: mean simulated ms between etcd outages; 0: never");
ABSL_FLAG(int, etcd_cut_off_mtbf_ms, 8000,
          "with --etcd_log: mean simulated ms between times the owner alone cannot reach etcd "
          "(up to 2.5 s); 0: never");
ABSL_FLAG(int, space_alarm_mtbf_ms, 15000,
          "with --etcd_log: mean simulated ms between etcd space quota alarms (up to 1.5 s: puts "
          "refused); 0: never");
ABSL_FLAG(double, etcd_lost_answer, 0.01,
          "with --etcd_log: chance a write to etcd is applied but its answer lost");
ABSL_FLAG(double, stale_route, 0.05,
          "with --etcd_log: chance a request goes to the owner before (a stale registry view)");
ABSL_FLAG(bool, bug_unfenced_log, false,
          "inject a bug (with --etcd_log): the decision log writes without the ownership fence");
ABSL_FLAG(bool, crash_all_at_end, true,
          "every node crashes at once when the last transaction has started");
ABSL_FLAG(bool, trace, false, "print every event of every run");
ABSL_FLAG(std::string, trace_filter, "", "with --trace: only events containing this (a txid)");
ABSL_FLAG(int, trace_keep, 300, "trace lines shown for a failing run");
ABSL_FLAG(bool, verbose, false, "print a line for every run, not only failing ones");
ABSL_FLAG(bool, keep_going, false, "run every seed even after a failure");
ABSL_FLAG(std::string, log_level, "fatal",
          "the daemons' own logging: debug, info, warning, error, fatal");

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "Deterministic simulation of txcoord: the real coordinator engine and real participants "
      "under seeded faults, checked for atomicity and liveness.\n  txsim --runs=100\n  txsim "
      "--seed=42 --trace");
  absl::ParseCommandLine(argc, argv);
  using namespace txcoord::sim;
  SimOptions options;
  options.transactions = absl::GetFlag(FLAGS_transactions);
  options.participants = absl::GetFlag(FLAGS_participants);
  options.clients = absl::GetFlag(FLAGS_clients);
  options.faults.loss = absl::GetFlag(FLAGS_loss);
  options.faults.duplicate = absl::GetFlag(FLAGS_duplicate);
  options.faults.slow = absl::GetFlag(FLAGS_slow);
  options.faults.coordinator_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_coordinator_mtbf_ms));
  options.faults.participant_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_participant_mtbf_ms));
  options.faults.partition_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_partition_mtbf_ms));
  options.faults.log_sync_failure = absl::GetFlag(FLAGS_log_sync_failure);
  options.faults.operator_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_operator_mtbf_ms));
  options.workload.short_commit_deadline = absl::GetFlag(FLAGS_short_commit_deadline);
  options.workload.settle_by_asking = absl::GetFlag(FLAGS_settle_by_asking);
  options.workload.early_prepare = absl::GetFlag(FLAGS_early_prepare);
  options.workload.named_branches = absl::GetFlag(FLAGS_named_branches);
  options.workload.reserved_txids = absl::GetFlag(FLAGS_reserved_txids);
  options.workload.signed_votes = absl::GetFlag(FLAGS_signed_votes);
  options.finished_cache = absl::GetFlag(FLAGS_finished_cache);
  options.deferred_votes = absl::GetFlag(FLAGS_deferred_votes);
  options.workload.single_branch = absl::GetFlag(FLAGS_single_branch);
  options.workload.client_abort = absl::GetFlag(FLAGS_client_abort);
  options.workload.split_execute = absl::GetFlag(FLAGS_split_execute);
  options.workload.abort_unknown = absl::GetFlag(FLAGS_abort_unknown);
  options.workload.max_step_gap = absl::Milliseconds(absl::GetFlag(FLAGS_max_step_gap_ms));
  options.workload.accounts = absl::GetFlag(FLAGS_accounts);
  options.workload.tx_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_tx_timeout_ms));
  options.agent_idle_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_idle_timeout_ms));
  options.bug_reply_before_durable = absl::GetFlag(FLAGS_bug_reply_before_durable);
  options.bug_vote_before_durable = absl::GetFlag(FLAGS_bug_vote_before_durable);
  options.bug_no_resolver = absl::GetFlag(FLAGS_bug_no_resolver);
  options.bug_operator_guesses_abort = absl::GetFlag(FLAGS_bug_operator_guesses_abort);
  options.workload.bug_deadline_means_aborted = absl::GetFlag(FLAGS_bug_deadline_means_aborted);
  options.etcd_log = absl::GetFlag(FLAGS_etcd_log);
  options.coordinator_processes = absl::GetFlag(FLAGS_coordinators);
  options.lease_ttl = absl::Milliseconds(absl::GetFlag(FLAGS_lease_ttl_ms));
  options.faults.pause_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_pause_mtbf_ms));
  options.faults.max_pause = absl::Milliseconds(absl::GetFlag(FLAGS_max_pause_ms));
  options.faults.etcd_outage_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_etcd_outage_mtbf_ms));
  options.faults.stale_route = absl::GetFlag(FLAGS_stale_route);
  options.faults.etcd_lost_answer = absl::GetFlag(FLAGS_etcd_lost_answer);
  options.faults.space_alarm_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_space_alarm_mtbf_ms));
  options.faults.etcd_cut_off_mtbf = absl::Milliseconds(absl::GetFlag(FLAGS_etcd_cut_off_mtbf_ms));
  options.bug_unfenced_log = absl::GetFlag(FLAGS_bug_unfenced_log);
  options.crash_all_at_end = absl::GetFlag(FLAGS_crash_all_at_end);
  options.trace_all = absl::GetFlag(FLAGS_trace);
  options.trace_filter = absl::GetFlag(FLAGS_trace_filter);
  options.trace_keep = absl::GetFlag(FLAGS_trace_keep);
  // "fatal" (the default) silences everything but crashes.
  txcoord::LogLevel level = txcoord::LogLevel::kFatal;
  if (absl::GetFlag(FLAGS_log_level) != "fatal" &&
      !txcoord::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "bad --log_level\n");
    return 2;
  }
  txcoord::SetMinLogLevel(level);
  options.quiet_logs = false;

  const int runs = absl::GetFlag(FLAGS_runs);
  const uint64_t first = absl::GetFlag(FLAGS_seed);
  const absl::Time start = absl::Now();
  int failed = 0;
  SimResult total;
  for (int i = 0; i < runs; ++i) {
    options.seed = first + i;
    SimResult r = RunSimulation(options);
    total.clients.begun += r.clients.begun;
    total.clients.committed += r.clients.committed;
    total.clients.aborted += r.clients.aborted;
    total.clients.unknown += r.clients.unknown;
    total.clients.settled += r.clients.settled;
    total.operator_repairs += r.operator_repairs;
    total.asked_rollbacks += r.asked_rollbacks;
    total.coordinator_crashes += r.coordinator_crashes;
    total.takeovers += r.takeovers;
    total.participant_crashes += r.participant_crashes;
    if (!r.ok || absl::GetFlag(FLAGS_verbose)) std::printf("%s", FormatReport(r, options).c_str());
    std::fflush(stdout);
    if (!r.ok) {
      ++failed;
      if (!absl::GetFlag(FLAGS_keep_going)) break;
    }
  }
  std::printf(
      "txsim: %d run(s) from seed %llu, %d failed; %llu transactions (%llu committed, %llu "
      "aborted, %llu unknown to the client, %llu settled by asking); %llu coordinator and %llu "
      "participant crashes; %llu takeovers; %llu branches repaired by the operator; %llu idle "
      "branches rolled back by asking; %.1fs wall time\n",
      runs, static_cast<unsigned long long>(first), failed,
      static_cast<unsigned long long>(total.clients.begun),
      static_cast<unsigned long long>(total.clients.committed),
      static_cast<unsigned long long>(total.clients.aborted),
      static_cast<unsigned long long>(total.clients.unknown),
      static_cast<unsigned long long>(total.clients.settled),
      static_cast<unsigned long long>(total.coordinator_crashes),
      static_cast<unsigned long long>(total.participant_crashes),
      static_cast<unsigned long long>(total.takeovers),
      static_cast<unsigned long long>(total.operator_repairs),
      static_cast<unsigned long long>(total.asked_rollbacks),
      absl::ToDoubleSeconds(absl::Now() - start));
  return failed == 0 ? 0 : 1;
}
