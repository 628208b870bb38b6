// A runaway query (max_statement_time, the caller's deadline): SQLite
// interrupts it, only that call's changes roll back, and the one connection
// is free again for every other branch, Prepare and Commit.
#include <atomic>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";
constexpr absl::Duration kLimit = absl::Milliseconds(200);
// Far above kLimit, far below "hung": an interrupted call returns by then.
constexpr absl::Duration kPromptly = absl::Seconds(5);
constexpr char kRunaway[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

class StatementTimeTest : public ParticipantTest {
 protected:
  void SetUp() override {
    options_.max_statement_time = kLimit;
    ParticipantTest::SetUp();
  }
};

TEST_F(StatementTimeTest, RunawayQueryInABranchIsInterruptedAndTheBranchKeepsItsEarlierWrites) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts VALUES (3, 'carol', 5)")}).ok());

  const absl::Time start = absl::Now();
  auto runaway = Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 1"), Sql(kRunaway)});
  EXPECT_LT(absl::Now() - start, kPromptly);
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kResourceExhausted) << runaway.status();
  EXPECT_THAT(runaway.status().message(), HasSubstr("statements[1]: interrupted"));
  EXPECT_THAT(runaway.status().message(), HasSubstr("longer than 200ms (--max_statement_time)"));

  // The branch is as it was before the call: carol, and alice's balance kept.
  EXPECT_EQ(participant_->BranchCount(), 1u);
  auto seen = Exec(kTx1, {Sql("SELECT sum(balance) FROM accounts")});
  EXPECT_EQ(OnlyValue(seen), SqlValue(int64_t{155}));
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT owner FROM accounts WHERE id = 3"), "carol");
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(StatementTimeTest, SetPolicyChangesTheLimitOfLaterCalls) {
  ParticipantPolicy policy = participant_->policy();
  policy.max_statement_time = absl::Milliseconds(300);
  ASSERT_TRUE(participant_->SetPolicy(policy).ok());
  auto runaway = Local({Sql(kRunaway)});
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kResourceExhausted) << runaway.status();
  EXPECT_THAT(runaway.status().message(), HasSubstr("longer than 300ms (--max_statement_time)"));
}

TEST_F(StatementTimeTest, RunawayLocalBatchIsInterruptedAndRolledBack) {
  auto runaway = Local({Sql("INSERT INTO accounts VALUES (4, 'dave', 1)"), Sql(kRunaway)});
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kResourceExhausted) << runaway.status();
  EXPECT_THAT(runaway.status().message(), HasSubstr("--max_statement_time"));
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts WHERE id = 4"), "0");
  EXPECT_TRUE(Local({Sql("INSERT INTO accounts VALUES (4, 'dave', 1)")}).ok());
}

TEST_F(StatementTimeTest, RunawayWithPrepareLeavesNoBranchBehind) {
  auto runaway = Exec(kTx1, {Sql("INSERT INTO accounts VALUES (3, 'carol', 5)"), Sql(kRunaway)},
                      absl::ZeroDuration(), /*prepare=*/true);
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kResourceExhausted) << runaway.status();
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
}

TEST_F(StatementTimeTest, AnotherBranchIsServedAndCommitsOnceTheRunawayIsInterrupted) {
  // What is shown: a branch that asks for the connection while a runaway
  // holds it gets through once the runaway is interrupted. Which thread
  // gets the connection first is up to the scheduler, so other branches
  // are run one after another for as long as the runaway's call lasts:
  // those that ask while it holds the connection wait for it, and every
  // one is answered promptly and commits.
  absl::StatusOr<ExecuteResult> runaway;
  std::atomic<bool> runaway_done{false};
  std::thread runner([&] {
    runaway = Exec("c1.1.100", {Sql(kRunaway)});
    runaway_done = true;
  });
  absl::Cleanup join = [&runner] { runner.join(); };
  int commits = 0;
  do {
    const std::string txid = absl::StrCat("c1.1.", 200 + commits);
    const absl::Time start = absl::Now();
    auto other = Exec(txid, {Sql("UPDATE accounts SET balance = balance - 7 WHERE id = 2")});
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_EQ(participant_->Prepare(txid).value(), Vote::kYes);
    ASSERT_TRUE(participant_->Commit(txid).ok());
    ++commits;
    EXPECT_LT(absl::Now() - start, kPromptly);
  } while (!runaway_done);
  std::move(join).Invoke();
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kResourceExhausted) << runaway.status();
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"),
            std::to_string(50 - 7 * commits));
}

TEST_F(StatementTimeTest, CallDeadlineSoonerThanTheLimitEndsTheRunWithDeadlineExceeded) {
  options_.max_statement_time = absl::Seconds(60);
  Reopen();
  const absl::Time start = absl::Now();
  auto runaway = participant_->Execute(kTx1, {Sql(kRunaway)}, false, absl::ZeroDuration(),
                                       absl::Now() + absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, kPromptly);
  EXPECT_EQ(runaway.status().code(), absl::StatusCode::kDeadlineExceeded) << runaway.status();
  EXPECT_THAT(runaway.status().message(), HasSubstr("the call's deadline passed"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

// The deadline is the service SQL's alone: the agent's own work after a run
// (changesets, rollback, Prepare's trial apply, Commit) runs however late.
TEST_F(StatementTimeTest, InternalWorkLongAfterARunIsNeverInterrupted) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts (id, owner, balance) "
                              "WITH RECURSIVE n(x) AS (SELECT 10 UNION ALL SELECT x + 1 FROM n "
                              "WHERE x < 3009) SELECT x, 'bulk', 1 FROM n")})
                  .ok());
  EXPECT_EQ(Exec(kTx2, {Sql(kRunaway)}).status().code(), absl::StatusCode::kResourceExhausted);
  absl::SleepFor(2 * kLimit);  // past both runs' deadlines

  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts WHERE owner = 'bulk'"), "3000");
}

}  // namespace
}  // namespace txcoord::participant::testing
