// The simulator as a test: many seeded runs of the whole system under
// faults must keep every transaction atomic and come to rest; the checker
// must catch deliberately injected bugs (durability, a client misreading a
// deadline, an operator forcing the wrong outcome); a seed is a replay.
#include <iostream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sim/simulator.h"

namespace txcoord::sim {
namespace {

struct Sweep {
  uint64_t runs = 0;
  Client::Stats totals;
  uint64_t operator_retries = 0;
  uint64_t operator_aborts = 0;
  uint64_t operator_repairs = 0;
  uint64_t asked_rollbacks = 0;
  uint64_t takeovers = 0;
  uint64_t pauses = 0;
  uint64_t etcd_outages = 0;
  uint64_t etcd_cut_offs = 0;
  uint64_t space_alarms = 0;
  uint64_t fail_stops = 0;
  uint64_t appender_log_batches = 0;
  std::optional<SimResult> failure;  // the first failing run
  SimOptions failing_options;
};

// Runs seeds first..first+runs-1 and stops at the first failure.
Sweep RunSeeds(SimOptions options, uint64_t first, uint64_t runs) {
  Sweep sweep;
  for (uint64_t seed = first; seed < first + runs; ++seed) {
    options.seed = seed;
    SimResult r = RunSimulation(options);
    ++sweep.runs;
    sweep.totals.begun += r.clients.begun;
    sweep.totals.committed += r.clients.committed;
    sweep.totals.aborted += r.clients.aborted;
    sweep.totals.unknown += r.clients.unknown;
    sweep.totals.deadline_exceeded += r.clients.deadline_exceeded;
    sweep.totals.settled += r.clients.settled;
    sweep.totals.reserved += r.clients.reserved;
    sweep.totals.signed_votes += r.clients.signed_votes;
    sweep.totals.deferred_votes += r.clients.deferred_votes;
    sweep.totals.early_prepared += r.clients.early_prepared;
    sweep.operator_retries += r.operator_retries;
    sweep.operator_aborts += r.operator_aborts;
    sweep.operator_repairs += r.operator_repairs;
    sweep.asked_rollbacks += r.asked_rollbacks;
    sweep.takeovers += r.takeovers;
    sweep.pauses += r.pauses;
    sweep.etcd_outages += r.etcd_outages;
    sweep.etcd_cut_offs += r.etcd_cut_offs;
    sweep.space_alarms += r.space_alarms;
    sweep.fail_stops += r.fail_stops;
    sweep.appender_log_batches += r.appender_log_batches;
    if (!r.ok) {
      sweep.failure = std::move(r);
      sweep.failing_options = options;
      break;
    }
  }
  return sweep;
}

bool AnyViolationContains(const SimResult& r, absl::string_view text) {
  for (const std::string& v : r.violations) {
    if (absl::StrContains(v, text)) return true;
  }
  return false;
}

TEST(SimulatorTest, SameSeedIsTheSameRunAndAnotherSeedIsNot) {
  SimOptions options;
  options.transactions = 100;
  options.seed = 11;
  const SimResult a = RunSimulation(options);
  const SimResult b = RunSimulation(options);
  options.seed = 12;
  const SimResult c = RunSimulation(options);
  ASSERT_TRUE(a.ok) << FormatReport(a, options);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.clients.committed, b.clients.committed);
  EXPECT_EQ(a.participant_crashes, b.participant_crashes);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

TEST(SimulatorTest, TenThousandTransactionsUnderFaultsStayAtomicAndComeToRest) {
  SimOptions options;
  options.transactions = 250;
  const absl::Time start = absl::Now();
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/42);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GE(sweep.totals.begun, 10000u);
  // The faults must not drown the workload: commits and aborts both happen.
  EXPECT_GT(sweep.totals.committed, sweep.totals.begun / 4);
  EXPECT_GT(sweep.totals.aborted, 0u);
  // Lost Aborts happen, and agents settle those branches by asking.
  EXPECT_GT(sweep.asked_rollbacks, 0u);
  // Decisions are logged both ways: by the log's writer, and by the thread
  // that appended (its callbacks running inside the runtime's Append).
  EXPECT_GT(sweep.appender_log_batches, 0u);
  std::cout << "simulated " << sweep.runs << " seeds, " << sweep.totals.begun << " transactions ("
            << sweep.totals.committed << " committed, " << sweep.totals.aborted << " aborted, "
            << sweep.totals.unknown << " unknown to the client; " << sweep.asked_rollbacks
            << " idle branches rolled back by asking; " << sweep.appender_log_batches
            << " log batches written by their appender) in " << absl::FormatDuration(took) << "\n";
}

// Txids from reserved blocks begin at their first Enlist or Commit, or are
// used up by an Abort or an agent's question first; a coordinator crash
// loses every reservation. None of it may break atomicity. (With the check
// that a used txid never begins again removed from the engine, a sweep of
// this kind finds a transaction decided both ways within a few seeds.)
TEST(SimulatorTest, TransactionsOnReservedTxidsUnderFaultsStayAtomicAndComeToRest) {
  SimOptions options;
  options.transactions = 250;
  options.workload.reserved_txids = 0.7;
  // Ended transactions are soon forgotten, so that a late Enlist or a
  // retried Commit meets a txid known only from the retained outcomes:
  // a used reserved txid must never begin again.
  options.finished_cache = 2;
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/12);
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GT(sweep.totals.reserved, sweep.totals.begun / 2);
  EXPECT_GT(sweep.totals.committed, sweep.totals.begun / 4);
  EXPECT_GT(sweep.totals.aborted, 0u);
}

// Votes signed by agents and carried by the client's Commit stand for the
// agents' Enlists. Crashes, lost and late messages, restarts with a new
// epoch (and a new secret) and reserved txids must not let a transaction
// commit a branch that did not prepare, nor decide one both ways. (With
// the runtime taking proofs without checking the txid's epoch or the
// proof, the checker's atomicity rule would be all that stands.)
// Twelve runs of transactions that mostly name their branches and prepare
// early, with `signed_votes` and `deferred_votes`; none may fail, and
// some must commit and some abort.
Sweep RunVoteSweep(double signed_votes, double deferred_votes) {
  SimOptions options;
  options.transactions = 250;
  options.workload.named_branches = 0.8;
  options.workload.early_prepare = 0.7;
  options.workload.signed_votes = signed_votes;
  options.workload.reserved_txids = 0.5;
  options.deferred_votes = deferred_votes;
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/12);
  EXPECT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GT(sweep.totals.committed, sweep.totals.begun / 4);
  EXPECT_GT(sweep.totals.aborted, 0u);
  return sweep;
}

TEST(SimulatorTest, TransactionsWithSignedVotesUnderFaultsStayAtomicAndComeToRest) {
  const Sweep sweep = RunVoteSweep(/*signed_votes=*/0.8, /*deferred_votes=*/0);
  // Most early prepares of such transactions were signed, not enlisted.
  EXPECT_GT(sweep.totals.signed_votes, sweep.totals.early_prepared / 4);
}

// Votes deferred past the Execute's answer (sent by Enlist once a sync
// covers the prepare), beside signed ones: crashes between the answer and
// the sync, lost Enlists and restarts must not let a transaction commit a
// branch whose prepare was lost.
TEST(SimulatorTest, TransactionsWithDeferredVotesUnderFaultsStayAtomicAndComeToRest) {
  const Sweep sweep = RunVoteSweep(/*signed_votes=*/0.5, /*deferred_votes=*/0.7);
  EXPECT_GT(sweep.totals.deferred_votes, sweep.totals.early_prepared / 4);
}

TEST(SimulatorTest, WithoutFaultsNoOutcomeIsUnknown) {
  SimOptions options;
  options.transactions = 300;
  options.faults.loss = 0;
  options.faults.duplicate = 0;
  options.faults.slow = 0;
  options.faults.coordinator_mtbf = absl::ZeroDuration();
  options.faults.participant_mtbf = absl::ZeroDuration();
  options.faults.partition_mtbf = absl::ZeroDuration();
  options.faults.log_sync_failure = 0;
  options.faults.operator_mtbf = absl::ZeroDuration();
  options.crash_all_at_end = false;
  options.seed = 3;
  const SimResult r = RunSimulation(options);
  ASSERT_TRUE(r.ok) << FormatReport(r, options);
  EXPECT_EQ(r.clients.unknown, 0u);
  EXPECT_EQ(r.clients.abandoned, 0u);
  EXPECT_EQ(r.coordinator_crashes + r.participant_crashes, 0u);
  EXPECT_GT(r.clients.committed, 200u);
}

// The checker has teeth: with a durability bug injected, the simulator finds
// a violation within a few seeds; the same seeds pass without the bug.
TEST(CheckerTest, FindsCoordinatorAnsweringCommittedBeforeTheRecordIsDurable) {
  SimOptions options;
  options.transactions = 250;
  options.bug_reply_before_durable = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  // The runtime hears "durable" early, so it answers the client and starts
  // phase 2 early: a crash in the window shows as a client told COMMITTED
  // of a transaction that is not applied, or as branches committed that
  // the restarted coordinator presumes aborted.
  EXPECT_TRUE(AnyViolationContains(*buggy.failure, "told COMMITTED") ||
              AnyViolationContains(*buggy.failure, "tells ABORTED but it is applied"))
      << FormatReport(*buggy.failure, buggy.failing_options);
  options.bug_reply_before_durable = false;
  Sweep fixed = RunSeeds(options, /*first=*/1, buggy.runs);
  EXPECT_FALSE(fixed.failure.has_value()) << FormatReport(*fixed.failure, fixed.failing_options);
  std::cout << "bug found at seed " << buggy.failure->seed << "\n";
}

TEST(CheckerTest, FindsParticipantVotingYesBeforeItsPrepareIsDurable) {
  SimOptions options;
  options.transactions = 250;
  options.bug_vote_before_durable = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  EXPECT_TRUE(AnyViolationContains(*buggy.failure, "told COMMITTED") ||
              AnyViolationContains(*buggy.failure, "not atomic") ||
              AnyViolationContains(*buggy.failure, "in part"))
      << FormatReport(*buggy.failure, buggy.failing_options);
  options.bug_vote_before_durable = false;
  Sweep fixed = RunSeeds(options, /*first=*/1, buggy.runs);
  EXPECT_FALSE(fixed.failure.has_value()) << FormatReport(*fixed.failure, fixed.failing_options);
  std::cout << "bug found at seed " << buggy.failure->seed << ": "
            << buggy.failure->violations.front() << "\n";
}

// Liveness has teeth too: without the in-doubt resolver, a prepared branch
// whose phase-2 message was lost (or that was recovered after a crash) stays
// in doubt, and the quiet phase ends with it still there.
TEST(CheckerTest, FindsInDoubtBranchesNobodyResolves) {
  SimOptions options;
  options.transactions = 250;
  options.bug_no_resolver = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  EXPECT_TRUE(AnyViolationContains(*buggy.failure, "still prepared (in doubt)"))
      << FormatReport(*buggy.failure, buggy.failing_options);
}

TEST(CheckerTest, FailingRunSaysHowToReplayIt) {
  SimOptions options;
  options.transactions = 250;
  options.bug_reply_before_durable = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value());
  const std::string report = FormatReport(*buggy.failure, buggy.failing_options);
  EXPECT_TRUE(absl::StrContains(
      report, absl::StrCat("txsim --seed=", buggy.failure->seed, " --transactions=250")))
      << report;
  EXPECT_TRUE(absl::StrContains(report, "--bug_reply_before_durable")) << report;
  EXPECT_FALSE(buggy.failure->trace_tail.empty());
  // Replaying the seed finds the same violation.
  const SimResult again = RunSimulation(buggy.failing_options);
  EXPECT_EQ(again.violations, buggy.failure->violations);
}

// Commits whose deadline passes before the outcome is decided: the client
// hears DEADLINE_EXCEEDED while the commit goes on, asks the coordinator
// (GetTransaction) until it is decided, and every answer it gets must match
// the databases (the checker holds "told" against them).
TEST(SimulatorTest, CommitsPastTheirDeadlineAreSettledByAskingAndTheAnswersHold) {
  SimOptions options;
  options.transactions = 250;
  options.workload.short_commit_deadline = 0.5;
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/10);
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GT(sweep.totals.deadline_exceeded, 100u);
  EXPECT_GT(sweep.totals.settled, 100u);
  std::cout << sweep.totals.deadline_exceeded << " commits past their deadline, "
            << sweep.totals.settled << " settled by asking\n";
}

TEST(CheckerTest, FindsAClientTakingDeadlineExceededForAborted) {
  SimOptions options;
  options.transactions = 250;
  options.workload.bug_deadline_means_aborted = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  EXPECT_TRUE(AnyViolationContains(*buggy.failure, "told ABORTED"))
      << FormatReport(*buggy.failure, buggy.failing_options);
  std::cout << "bug found at seed " << buggy.failure->seed << ": "
            << buggy.failure->violations.front() << "\n";
}

// An operator acting often (every 200 ms on average): retrying phase 2,
// aborting undecided transactions, and repairing branches of COMMITTING
// ones by a heuristic commit at the agent followed by mark-done.
TEST(SimulatorTest, OperatorActionsKeepEveryTransactionAtomic) {
  SimOptions options;
  options.transactions = 250;
  options.faults.operator_mtbf = absl::Milliseconds(200);
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GT(sweep.operator_retries, 0u);
  EXPECT_GT(sweep.operator_aborts, 0u);
  EXPECT_GT(sweep.operator_repairs, 0u);
  std::cout << "operator: " << sweep.operator_retries << " retries, " << sweep.operator_aborts
            << " aborts, " << sweep.operator_repairs << " branches repaired\n";
}

TEST(CheckerTest, FindsAnOperatorAbortingABranchOfACommittedTransaction) {
  SimOptions options;
  options.transactions = 250;
  options.faults.operator_mtbf = absl::Milliseconds(200);
  options.bug_operator_guesses_abort = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  EXPECT_TRUE(AnyViolationContains(*buggy.failure, "not atomic"))
      << FormatReport(*buggy.failure, buggy.failing_options);
  std::cout << "bug found at seed " << buggy.failure->seed << ": "
            << buggy.failure->violations.front() << "\n";
}

// Regression (docs/testing.md, "Findings"): a client that settles a lost
// Commit reply with Abort used to hear OK for a transaction that had
// committed, ended and been forgotten in a coordinator restart.
TEST(SimulatorTest, ClientSettlingALostCommitWithAbortIsNeverMisled) {
  SimOptions options;
  options.transactions = 250;
  options.workload.abort_unknown = true;
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/5);
  EXPECT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
}

// An agent that restarts (or reaps the idle branch) between two Execute
// calls of one transaction loses the branch's earlier writes; the next
// Execute starts a new branch under a new token, and the coordinator must
// abort rather than commit half of the participant's work (txsim --seed=2
// --split_execute --max_step_gap_ms=50 found it before branch tokens).
TEST(SimulatorTest, BranchWrittenInTwoExecutesIsNeverHalfCommittedAcrossAgentRestarts) {
  SimOptions options;
  options.transactions = 250;
  options.workload.split_execute = true;
  options.workload.max_step_gap = absl::Milliseconds(50);
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/20);
  EXPECT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
}

}  // namespace
}  // namespace txcoord::sim

namespace txcoord::sim {
namespace {

// The decision log on the etcd model, two coordinator processes for the
// space: owners crash (kill -9) and standbys take over once the lease ends,
// owners pause past their lease and resume with stale memory, owners are
// cut off from etcd alone and go on serving, etcd goes away, loses answers
// and raises its space alarm; every transaction stays atomic, what clients
// and participants were told holds, and the system comes to rest.
SimOptions WithEtcd() {
  SimOptions options;
  options.transactions = 250;
  options.etcd_log = true;
  return options;
}

TEST(SimulatorTest, TenThousandTransactionsWithTakeoversOnEtcdStayAtomicAndComeToRest) {
  const absl::Time start = absl::Now();
  Sweep sweep = RunSeeds(WithEtcd(), /*first=*/1, /*runs=*/46);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GE(sweep.totals.begun, 10000u);
  EXPECT_GT(sweep.totals.committed, sweep.totals.begun / 4);
  EXPECT_GT(sweep.totals.aborted, 0u);
  // Several takeovers a run, through crashes, pauses past the lease and
  // etcd outages and cut-offs; some owners learn of it from the fence.
  EXPECT_GT(sweep.takeovers, 300u);
  EXPECT_GT(sweep.pauses, 100u);
  EXPECT_GT(sweep.etcd_outages, 50u);
  EXPECT_GT(sweep.etcd_cut_offs, 50u);
  EXPECT_GT(sweep.space_alarms, 20u);
  EXPECT_GT(sweep.fail_stops, 20u);
  std::cout << "simulated " << sweep.runs << " seeds on etcd, " << sweep.totals.begun
            << " transactions (" << sweep.totals.committed << " committed, " << sweep.totals.aborted
            << " aborted, " << sweep.totals.unknown << " unknown to the client), "
            << sweep.takeovers << " takeovers, " << sweep.pauses << " pauses of the owner, "
            << sweep.etcd_outages << " etcd outages, " << sweep.etcd_cut_offs
            << " owners cut off from etcd, " << sweep.space_alarms << " space alarms, "
            << sweep.fail_stops << " fail-stops (the space lost, or the log failed), in "
            << absl::FormatDuration(took) << "\n";
}

TEST(SimulatorTest, SameSeedIsTheSameRunWithEtcd) {
  SimOptions options = WithEtcd();
  options.transactions = 100;
  options.seed = 5;
  const SimResult a = RunSimulation(options);
  const SimResult b = RunSimulation(options);
  ASSERT_TRUE(a.ok) << FormatReport(a, options);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.takeovers, b.takeovers);
  EXPECT_GT(a.takeovers, 0u);
}

// Fencing has teeth: with the decision log writing without the guard, an
// owner paused past its lease (or cut off from etcd) goes on after a
// standby took over and the participants heard the new owner's presumed
// abort: it finishes collecting its votes, or its COMMIT write that waited
// is sent again, logs COMMIT anyway and tells the client COMMITTED.
TEST(CheckerTest, FindsAnOwnerThatLostTheSpaceWritingDecisionsWithoutTheFence) {
  SimOptions options = WithEtcd();
  options.bug_unfenced_log = true;
  Sweep buggy = RunSeeds(options, /*first=*/1, /*runs=*/20);
  ASSERT_TRUE(buggy.failure.has_value()) << "no violation in " << buggy.runs << " seeds";
  // What a decision made by an owner that lost the space looks like.
  std::string telling;
  for (const std::string& v : buggy.failure->violations) {
    for (const char* what : {"told COMMITTED", "tells COMMITTED", "tells ABORTED but it is applied",
                             "told ABORTED", "both ways", "not atomic"}) {
      if (telling.empty() && absl::StrContains(v, what)) telling = v;
    }
  }
  EXPECT_FALSE(telling.empty()) << FormatReport(*buggy.failure, buggy.failing_options);
  const std::string report = FormatReport(*buggy.failure, buggy.failing_options);
  EXPECT_TRUE(absl::StrContains(report, "--etcd_log")) << report;
  EXPECT_TRUE(absl::StrContains(report, "--bug_unfenced_log")) << report;
  options.bug_unfenced_log = false;
  Sweep fenced = RunSeeds(options, /*first=*/1, buggy.runs);
  EXPECT_FALSE(fenced.failure.has_value()) << FormatReport(*fenced.failure, fenced.failing_options);
  std::cout << "bug found at seed " << buggy.failure->seed << ": " << telling << "\n";
}

// Regression (docs/testing.md, "Findings"): an owner whose decision log
// failed for good on etcd's space alarm kept the space, its lease renewed,
// and nothing was ever decided again. Owners never crash here, nor does
// every node at the end, so nothing else would hand the space over.
TEST(SimulatorTest, AnOwnerWhoseLogFailsForGoodLeavesTheSpaceToAStandby) {
  SimOptions options = WithEtcd();
  options.crash_all_at_end = false;
  options.faults.coordinator_mtbf = absl::ZeroDuration();
  options.faults.pause_mtbf = absl::ZeroDuration();
  options.faults.etcd_cut_off_mtbf = absl::ZeroDuration();
  options.faults.space_alarm_mtbf = absl::Seconds(5);
  Sweep sweep = RunSeeds(options, /*first=*/1, /*runs=*/6);
  ASSERT_FALSE(sweep.failure.has_value()) << FormatReport(*sweep.failure, sweep.failing_options);
  EXPECT_GT(sweep.fail_stops, 0u);
  EXPECT_GT(sweep.takeovers, 0u);
}

}  // namespace
}  // namespace txcoord::sim
