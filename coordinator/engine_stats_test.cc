#include <string>
#include <vector>

#include "common/heuristic.h"
#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using testing::kT0;

class EngineStatsTest : public ::testing::Test {
 protected:
  EngineStatsTest() : engine_(Options()) {}

  static EngineOptions Options() {
    EngineOptions options;
    options.cluster_id = "c1";
    options.epoch = 3;
    return options;
  }

  std::string BeginWith(const std::vector<std::string>& participants, absl::Time at = kT0) {
    return testing::BeginWith(engine_, participants, at);
  }

  // Commits a two-branch transaction through COMMIT durable.
  std::string CommitTwoBranches() {
    const std::string txid = BeginWith({"a", "b"});
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, kT0, &out).ok());
    engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
    engine_.OnPrepareResult(txid, "b", Vote::kYes, kT0, &out);
    engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
    return txid;
  }

  Engine engine_;
};

TEST_F(EngineStatsTest, CommitIsCountedOnceWhenDurable) {
  const std::string txid = CommitTwoBranches();
  EXPECT_EQ(engine_.Stats(kT0).committed, 1u);
  EXPECT_EQ(engine_.Stats(kT0).votes_yes, 2u);
  // A client asking again hears the same decision: not a new commit.
  Actions out;
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  EXPECT_EQ(engine_.Stats(kT0).committed, 1u);
  EXPECT_EQ(engine_.Stats(kT0).aborted, 0u);
}

TEST_F(EngineStatsTest, NoVoteAndFailedPrepareAreCountedApartAndAbort) {
  const std::string txid = BeginWith({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  engine_.OnPrepareResult(txid, "a", absl::AbortedError("voted NO"), kT0, &out);
  engine_.OnPrepareResult(txid, "b", absl::UnavailableError("down"), kT0, &out);  // too late
  const EngineStats stats = engine_.Stats(kT0);
  EXPECT_EQ(stats.votes_no, 1u);
  EXPECT_EQ(stats.votes_failed, 0u) << "a vote after the decision is not taken into account";
  EXPECT_EQ(stats.aborted, 1u);
  EXPECT_EQ(stats.committed, 0u);

  const std::string other = BeginWith({"a", "b"});
  ASSERT_TRUE(engine_.Commit(other, kT0, &out).ok());
  engine_.OnPrepareResult(other, "a", absl::UnavailableError("down"), kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).votes_failed, 1u);
  EXPECT_EQ(engine_.Stats(kT0).aborted, 2u);
}

TEST_F(EngineStatsTest, ReadOnlyAndOnePhaseCommitsCount) {
  const std::string read_only = BeginWith({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Commit(read_only, kT0, &out).ok());
  engine_.OnPrepareResult(read_only, "a", Vote::kReadOnly, kT0, &out);
  engine_.OnPrepareResult(read_only, "b", Vote::kReadOnly, kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).votes_read_only, 2u);
  EXPECT_EQ(engine_.Stats(kT0).committed, 1u);

  const std::string one_phase = BeginWith({"a"});
  ASSERT_TRUE(engine_.Commit(one_phase, kT0, &out).ok());
  engine_.OnOnePhaseLogged(one_phase, absl::OkStatus(), kT0, &out);
  engine_.OnOnePhaseResult(one_phase, "a", absl::UnavailableError("down"), kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).phase2_retries, 1u);
  engine_.OnOnePhaseResult(one_phase, "a", true, kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).committed, 2u);
}

TEST_F(EngineStatsTest, EarlyPrepareVoteCountsOnce) {
  const std::string txid = BeginWith({});
  Actions out;
  ASSERT_TRUE(engine_.Enlist(txid, {"a", "a:1"}, /*prepared=*/true, kT0, &out).ok());
  ASSERT_TRUE(engine_.Enlist(txid, {"a", "a:1"}, /*prepared=*/true, kT0, &out).ok());  // retried
  EXPECT_EQ(engine_.Stats(kT0).votes_yes, 1u);
}

TEST_F(EngineStatsTest, FailedPhaseTwoCallsAreRetriesAndAbortsCount) {
  const std::string txid = CommitTwoBranches();
  Actions out;
  engine_.OnPhase2Result(txid, "a", absl::UnavailableError("down"), kT0, &out);
  engine_.OnPhase2Result(txid, "a", absl::UnavailableError("down"), kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).phase2_retries, 2u);

  const std::string aborted = BeginWith({"a"});
  ASSERT_TRUE(engine_.Abort(aborted, "client", kT0, &out).ok());
  EXPECT_EQ(engine_.Stats(kT0).aborted, 1u);
}

TEST_F(EngineStatsTest, HeuristicMixedBranchesAreCounted) {
  const std::string txid = CommitTwoBranches();
  Actions out;
  engine_.OnPhase2Result(txid, "a", HeuristicMixedError("aborted by an operator"), kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0).heuristic_mixed_branches, 1u);
  EXPECT_EQ(engine_.Stats(kT0).phase2_retries, 0u) << "asking again cannot change it";
}

TEST_F(EngineStatsTest, OldestOpenTransactionAge) {
  EXPECT_EQ(engine_.Stats(kT0).open, 0u);
  EXPECT_EQ(engine_.Stats(kT0).oldest_open_age, absl::ZeroDuration());
  BeginWith({"a"}, kT0);
  BeginWith({"a"}, kT0 + absl::Seconds(5));
  const EngineStats stats = engine_.Stats(kT0 + absl::Seconds(12));
  EXPECT_EQ(stats.open, 2u);
  EXPECT_EQ(stats.oldest_open_age, absl::Seconds(12));
}

TEST_F(EngineStatsTest, RecoveredTransactionAgesFromRecovery) {
  Actions out;
  engine_.RecoverCommitted("c1.2.9", {{"a", "a:1"}}, kT0, &out);
  EXPECT_EQ(engine_.Stats(kT0 + absl::Seconds(3)).oldest_open_age, absl::Seconds(3));
  EXPECT_EQ(engine_.Stats(kT0).committed, 0u) << "decided by an earlier run";
}

}  // namespace
}  // namespace txcoord::coordinator
