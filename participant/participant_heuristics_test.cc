// Heuristic decisions: an operator forces an in-doubt branch's outcome; it
// is stored durably with the apply, and a coordinator that later decides the
// other way gets HEURISTIC_MIXED, which both sides keep.
#include "common/heuristic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

class HeuristicsTest : public ParticipantTest {
 protected:
  // A prepared branch of `txid` that sets alice's balance to `balance`.
  void PrepareUpdate(const std::string& txid, int balance) {
    ASSERT_TRUE(
        Exec(txid, {Sql("UPDATE accounts SET balance = ?1 WHERE id = 1", {int64_t{balance}})})
            .ok());
    ASSERT_EQ(participant_->Prepare(txid).value(), Vote::kYes);
  }
};

TEST_F(HeuristicsTest, HeuristicCommitAppliesTheBranchAndRecordsTheDecision) {
  PrepareUpdate(kTx1, 70);
  absl::StatusOr<HeuristicDecision> decided =
      participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "coordinator data lost");
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_EQ(decided->coordinator, "c1");
  EXPECT_FALSE(decided->coordinator_outcome.has_value());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "70");
  EXPECT_TRUE(participant_->ListPrepared().empty());
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT decision || ':' || reason FROM _txcoord_heuristics"),
            "committed:coordinator data lost");
}

TEST_F(HeuristicsTest, HeuristicAbortDropsTheBranchAndSurvivesReopen) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kAborted, "ops").ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  Reopen();
  EXPECT_TRUE(participant_->ListPrepared().empty());
  absl::StatusOr<std::vector<HeuristicDecision>> listed = participant_->ListHeuristics();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].txid, kTx1);
  EXPECT_EQ((*listed)[0].decision, Outcome::kAborted);
}

TEST_F(HeuristicsTest, ResolveIsIdempotentButCannotBeReversed) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "x").ok());
  EXPECT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "x").ok());
  absl::StatusOr<HeuristicDecision> reversed =
      participant_->ResolveHeuristically(kTx1, Outcome::kAborted, "x");
  EXPECT_EQ(reversed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(reversed.status().message()), HasSubstr("already heuristically"));
}

TEST_F(HeuristicsTest, OnlyPreparedBranchesCanBeResolved) {
  EXPECT_EQ(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 1 WHERE id = 2")}).ok());
  absl::StatusOr<HeuristicDecision> active =
      participant_->ResolveHeuristically(kTx2, Outcome::kCommitted, "");
  EXPECT_EQ(active.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(active.status().message()), HasSubstr("not prepared"));
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "50");
}

TEST_F(HeuristicsTest, CoordinatorCommitAfterHeuristicAbortIsHeuristicMixed) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kAborted, "ops").ok());
  absl::Status commit = participant_->Commit(kTx1);
  EXPECT_TRUE(IsHeuristicMixed(commit)) << commit;
  EXPECT_THAT(std::string(commit.message()), HasSubstr("heuristically aborted by an operator"));
  EXPECT_THAT(std::string(commit.message()), HasSubstr("txctl mark-done c1.1.1 svc"));
  // Asked again (a coordinator retry), the answer is the same.
  EXPECT_TRUE(IsHeuristicMixed(participant_->Commit(kTx1)));
  absl::StatusOr<std::vector<HeuristicDecision>> listed = participant_->ListHeuristics();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].mixed);
  EXPECT_EQ((*listed)[0].coordinator_outcome, Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT mixed FROM _txcoord_heuristics"), "1");
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(HeuristicsTest, CoordinatorAbortAfterHeuristicCommitIsHeuristicMixed) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "ops").ok());
  EXPECT_TRUE(IsHeuristicMixed(participant_->Abort(kTx1)));
}

TEST_F(HeuristicsTest, MatchingCoordinatorOutcomeConfirmsTheDecision) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "ops").ok());
  EXPECT_TRUE(participant_->Commit(kTx1).ok());
  absl::StatusOr<std::vector<HeuristicDecision>> unsettled = participant_->ListHeuristics(true);
  ASSERT_TRUE(unsettled.ok());
  EXPECT_TRUE(unsettled->empty());
  absl::StatusOr<std::vector<HeuristicDecision>> all = participant_->ListHeuristics();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_FALSE((*all)[0].mixed);
  EXPECT_EQ((*all)[0].coordinator_outcome, Outcome::kCommitted);
}

TEST_F(HeuristicsTest, ResolverReportedOutcomeIsRecordedOnceAndFlagsMixed) {
  PrepareUpdate(kTx1, 70);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kAborted, "ops").ok());
  ASSERT_EQ(participant_->ListHeuristics(true)->size(), 1u);
  absl::StatusOr<HeuristicDecision> recorded =
      participant_->RecordCoordinatorOutcome(kTx1, Outcome::kCommitted);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_TRUE(recorded->mixed);
  EXPECT_TRUE(participant_->ListHeuristics(true)->empty());
  // The coordinator's decision never changes; a later report is ignored.
  EXPECT_TRUE(participant_->RecordCoordinatorOutcome(kTx1, Outcome::kAborted)->mixed);
  EXPECT_EQ(participant_->RecordCoordinatorOutcome(kTx2, Outcome::kAborted).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(HeuristicsTest, ServiceSqlCannotSeeTheHeuristicsTable) {
  absl::StatusOr<ExecuteResult> peek = Local({Sql("SELECT * FROM _txcoord_heuristics")});
  EXPECT_FALSE(peek.ok());
}

}  // namespace
}  // namespace txcoord::participant::testing
