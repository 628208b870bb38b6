#include "participant/participant_observer.h"

#include <array>
#include <atomic>

#include "gtest/gtest.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

class CountingObserver final : public ParticipantObserver {
 public:
  void OnExecute(absl::Duration latency, const absl::Status& status) override {
    ++executes;
    if (!status.ok()) ++failed_executes;
    EXPECT_GE(latency, absl::ZeroDuration());
  }
  void OnLockTimeout() override { ++lock_timeouts; }
  void OnPrepare(Vote vote) override {
    ++(vote == Vote::kYes ? yes : vote == Vote::kNo ? no : read_only);
  }
  void OnCommit() override { ++commits; }
  void OnAbort(RollbackReason reason) override {
    ++aborts;
    ++by_reason[static_cast<int>(reason)];
  }
  int Aborts(RollbackReason reason) const { return by_reason[static_cast<int>(reason)]; }

  std::atomic<int> executes{0}, failed_executes{0}, lock_timeouts{0}, yes{0}, no{0}, read_only{0},
      commits{0}, aborts{0};
  std::array<std::atomic<int>, kRollbackReasons> by_reason{};
};

class ParticipantObserverTest : public ParticipantTest {
 protected:
  void SetUp() override {
    options_.observer = &observer_;
    ParticipantTest::SetUp();
  }
  CountingObserver observer_;
};

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

TEST_F(ParticipantObserverTest, PrepareAndCommitAreReported) {
  const int executes_before = observer_.executes;  // SetUp's local batch
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  EXPECT_EQ(observer_.executes, executes_before + 1);
  ASSERT_EQ(*participant_->Prepare(kTx1), Vote::kYes);
  ASSERT_EQ(*participant_->Prepare(kTx2), Vote::kNo);  // unknown branch
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  ASSERT_TRUE(participant_->Commit(kTx1).ok());  // a retry applies nothing
  EXPECT_EQ(observer_.yes, 1);
  EXPECT_EQ(observer_.no, 1);
  EXPECT_EQ(observer_.commits, 1);
  EXPECT_EQ(observer_.aborts, 0);
}

TEST_F(ParticipantObserverTest, EarlyPrepareIsAPrepare) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                   absl::ZeroDuration(), /*prepare=*/true)
                  .ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("SELECT * FROM accounts")}, absl::ZeroDuration(), true).ok());
  EXPECT_EQ(observer_.yes, 1);
  EXPECT_EQ(observer_.read_only, 1);
}

TEST_F(ParticipantObserverTest, AbortsAndOnePhaseCommitsAreReported) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  ASSERT_TRUE(participant_->Abort(kTx1).ok());  // already gone: nothing rolled back
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}).ok());
  ASSERT_EQ(*participant_->CommitOnePhase(kTx2), Outcome::kCommitted);
  EXPECT_EQ(observer_.aborts, 1);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kAborted), 1);
  EXPECT_EQ(observer_.commits, 1);
}

TEST_F(ParticipantObserverTest, IdleRollbackIsAnAbort) {
  options_.branch_idle_timeout = absl::Hours(1);  // reaped by hand below, not by the thread
  Reopen();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  EXPECT_EQ(participant_->ReapIdleBranches(absl::Now() + absl::Hours(1)), 1u);
  EXPECT_EQ(observer_.aborts, 1);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kIdle), 1);
}

TEST_F(ParticipantObserverTest, EachRollbackIsReportedWithItsReason) {
  // Release.
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(participant_->Release("c1.1.1").released);
  // A refused enlistment.
  enlister_.FailNext(absl::FailedPreconditionError("transaction c1.1.2 is ABORTED"));
  ASSERT_FALSE(Exec("c1.1.2", {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}).ok());
  // A coordinator epoch left behind.
  ASSERT_TRUE(Exec("c1.1.3", {Sql("UPDATE accounts SET balance = 3 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec("c1.2.1", {Sql("UPDATE accounts SET balance = 4 WHERE id = 2")}).ok());
  // A branch that replaced a lost one: the coordinator asks under another token.
  const uint64_t lost = enlister_.calls().back().token + 100;
  ASSERT_EQ(participant_->Prepare("c1.2.1", lost).value(), Vote::kNo);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kReleased), 1);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kEnlistRefused), 1);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kEpochLeftBehind), 1);
  EXPECT_EQ(observer_.Aborts(RollbackReason::kReplaced), 1);
  EXPECT_EQ(observer_.aborts, 4);
}

TEST_F(ParticipantObserverTest, LockTimeoutIsReported) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  absl::StatusOr<ExecuteResult> blocked =
      Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}, absl::Milliseconds(20));
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(observer_.lock_timeouts, 1);
  EXPECT_GE(observer_.failed_executes, 1);
}

}  // namespace
}  // namespace txcoord::participant::testing
