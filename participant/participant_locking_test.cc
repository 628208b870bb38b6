// Row locks between branches: a conflicting Execute waits and re-runs once
// the holder ends, or times out; UNIQUE values and foreign-key parents are
// locked so that two conflicting branches can never both vote YES.
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";
constexpr absl::Duration kShort = absl::Milliseconds(100);

class ParticipantLockingTest : public ParticipantTest {
 protected:
  void SetUp() override {
    // Every lock wait announces itself, so a test knows the waiter is blocked.
    options_.on_lock_wait = [this](const std::string& txid, const std::string& holder) {
      if (!waiting_.HasBeenNotified()) waiting_.Notify();
    };
    ParticipantTest::SetUp();
  }

  absl::Notification waiting_;
};

TEST_F(ParticipantLockingTest, WaiterRunsAgainAfterHolderCommitsAndSeesItsValue) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = balance + 10 WHERE id = 1")}).ok());
  absl::StatusOr<ExecuteResult> second;
  std::thread waiter([&] {
    second = Exec(kTx2, {Sql("UPDATE accounts SET balance = balance + 5 WHERE id = 1"),
                         Sql("SELECT balance FROM accounts WHERE id = 1")});
  });
  waiting_.WaitForNotification();
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  waiter.join();

  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(OnlyValue(second, 1), SqlValue(int64_t{115}));  // only the successful run
  ASSERT_EQ(participant_->CommitOnePhase(kTx2).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "115");
}

TEST_F(ParticipantLockingTest, AnEarlyPrepareThatWaitedRunsAgainAndPreparesOnTheHoldersValue) {
  // An early prepare runs its batch in the transaction it would store the
  // branch in: it must let go of that transaction while it waits, or the
  // holder could not commit.
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = balance + 10 WHERE id = 1")},
                   absl::ZeroDuration(), /*prepare=*/true)
                  .ok());
  absl::StatusOr<ExecuteResult> second;
  std::thread waiter([&] {
    second = Exec(kTx2,
                  {Sql("UPDATE accounts SET balance = balance + 5 WHERE id = 1"),
                   Sql("SELECT balance FROM accounts WHERE id = 1")},
                  absl::ZeroDuration(), /*prepare=*/true);
  });
  waiting_.WaitForNotification();
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  waiter.join();

  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->vote, Vote::kYes);
  EXPECT_EQ(OnlyValue(second, 1), SqlValue(int64_t{115}));
  // Prepared, not applied: the row is as the holder committed it.
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "110");
  ASSERT_TRUE(participant_->Commit(kTx2).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "115");
}

TEST_F(ParticipantLockingTest, WaiterProceedsWhenHolderAborts) {
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM accounts WHERE id = 2")}).ok());
  absl::StatusOr<ExecuteResult> second;
  std::thread waiter(
      [&] { second = Exec(kTx2, {Sql("UPDATE accounts SET balance = 0 WHERE id = 2")}); });
  waiting_.WaitForNotification();
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  waiter.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->results[0].changes, 1);
}

TEST_F(ParticipantLockingTest, AnIntegerKeyAndTheRealEqualToItShareOneLock) {
  // A STRICT ANY key keeps 9.21e18 a real, equal to the integer as a key.
  ASSERT_TRUE(Local({Sql("CREATE TABLE big(k ANY PRIMARY KEY, v TEXT) STRICT")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO big VALUES (9210000000000000000, 'a')")}).ok());
  auto second = Exec(kTx2, {Sql("INSERT INTO big VALUES (9.21e18, 'b')")}, absl::Milliseconds(50));
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(), HasSubstr("held by txid c1.1.1"));
}

TEST_F(ParticipantLockingTest, WaitTimesOutWhenHolderDoesNotFinish) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}).ok());
  auto second =
      Exec(kTx2, {Sql("UPDATE accounts SET owner = 'x' WHERE id = 1")}, absl::Milliseconds(50));
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(),
              HasSubstr("lock timeout after 50ms: accounts row (1) is held by txid c1.1.1"));
  EXPECT_EQ(participant_->BranchCount(), 1u);  // the second branch never wrote
  EXPECT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET owner = 'x' WHERE id = 2")}).ok());
}

TEST_F(ParticipantLockingTest, SetPolicyShortensTheDefaultLockWaitOfLaterCalls) {
  ParticipantPolicy policy = participant_->policy();
  ASSERT_EQ(policy.default_lock_timeout, absl::Seconds(5));
  policy.default_lock_timeout = absl::Milliseconds(100);
  ASSERT_TRUE(participant_->SetPolicy(policy).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}).ok());

  const absl::Time start = absl::Now();
  auto second = Exec(kTx2, {Sql("UPDATE accounts SET owner = 'x' WHERE id = 1")});
  const absl::Duration waited = absl::Now() - start;
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(), HasSubstr("lock timeout after 100ms"));
  EXPECT_GE(waited, absl::Milliseconds(100));
  EXPECT_LT(waited, absl::Seconds(3));  // not the 5s it started with
  EXPECT_EQ(participant_->policy().default_lock_timeout, absl::Milliseconds(100));
}

TEST_F(ParticipantLockingTest, SetPolicyRefusesANonPositiveLockTimeout) {
  ParticipantPolicy policy = participant_->policy();
  policy.default_lock_timeout = absl::ZeroDuration();
  EXPECT_EQ(participant_->SetPolicy(policy).code(), absl::StatusCode::kInvalidArgument);
  policy.default_lock_timeout = absl::Seconds(1);
  policy.branch_idle_timeout = -absl::Seconds(1);
  EXPECT_EQ(participant_->SetPolicy(policy).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(participant_->policy().default_lock_timeout, absl::Seconds(5));  // unchanged
}

TEST_F(ParticipantLockingTest, ReadsDoNotWaitAndSeeCommittedData) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}).ok());
  auto read = Exec(kTx2, {Sql("SELECT balance FROM accounts WHERE id = 1")}, kShort);
  EXPECT_EQ(OnlyValue(read), SqlValue(int64_t{100}));
  EXPECT_FALSE(waiting_.HasBeenNotified());
}

TEST_F(ParticipantLockingTest, SameUniqueValueCannotBeInsertedByTwoBranches) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO users VALUES (1, 'a@example.com')")}).ok());
  auto second = Exec(kTx2, {Sql("INSERT INTO users VALUES (2, 'a@example.com')")}, kShort);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(), HasSubstr("users unique index"));
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(participant_->Prepare(kTx2).value(), Vote::kNo);
}

TEST_F(ParticipantLockingTest, UniqueValueAnUpdateMovesToIsLocked) {
  ASSERT_TRUE(Local({Sql("INSERT INTO users VALUES (1, 'old@example.com')")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE users SET email = 'new@example.com' WHERE id = 1")}).ok());
  EXPECT_EQ(
      Exec(kTx2, {Sql("INSERT INTO users VALUES (2, 'new@example.com')")}, kShort).status().code(),
      absl::StatusCode::kAborted);
}

TEST_F(ParticipantLockingTest, ChildInsertBlocksDeleteOfItsParent) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO children VALUES (10, 1)")}).ok());
  auto remove = Exec(kTx2, {Sql("DELETE FROM parents WHERE id = 1")}, kShort);
  ASSERT_EQ(remove.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(remove.status().message(), HasSubstr("parents row (1) is held by txid c1.1.1"));
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT parent_id FROM children WHERE id = 10"), "1");
}

TEST_F(ParticipantLockingTest, ParentDeleteBlocksChildInsert) {
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM parents WHERE id = 1")}).ok());
  auto insert = Exec(kTx2, {Sql("INSERT INTO children VALUES (10, 1)")}, kShort);
  ASSERT_EQ(insert.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(insert.status().message(), HasSubstr("parents row (1)"));
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
}

TEST_F(ParticipantLockingTest, ChildrenOfOneParentDoNotBlockEachOther) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO children VALUES (10, 1)")}).ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("INSERT INTO children VALUES (11, 1)")}, kShort).ok());
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(participant_->Prepare(kTx2).value(), Vote::kYes);
  EXPECT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_TRUE(participant_->Commit(kTx2).ok());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM children"), "2");
}

TEST_F(ParticipantLockingTest, LocalWriteWaitsForBranchLock) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  auto local = participant_->Execute("", {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")},
                                     false, absl::Milliseconds(50));
  ASSERT_EQ(local.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(local.status().message(), HasSubstr("held by txid c1.1.1"));
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  ASSERT_TRUE(Local({Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "2");
}

TEST_F(ParticipantLockingTest, CascadedDeletesCommitWithTheirParent) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE orders(id INTEGER PRIMARY KEY,"
                         " parent_id INTEGER REFERENCES parents(id) ON DELETE CASCADE)"),
                     Sql("INSERT INTO orders VALUES (20, 1), (21, 1)")})
                  .ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM parents WHERE id = 1")}).ok());
  // The cascade is part of the branch: its rows are locked too.
  EXPECT_EQ(
      Exec(kTx2, {Sql("UPDATE orders SET parent_id = NULL WHERE id = 21")}, kShort).status().code(),
      absl::StatusCode::kAborted);
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM orders"), "0");
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM parents"), "0");
}

TEST_F(ParticipantLockingTest, SetNullActionsCommitWithTheirParent) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT,"
                         " parent_id INTEGER REFERENCES parents(id) ON DELETE SET NULL)"),
                     Sql("INSERT INTO notes VALUES (30, 'a', 1), (31, 'b', 1)")})
                  .ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM parents WHERE id = 1"),
                          Sql("UPDATE notes SET text = 'orphan' WHERE id = 31")})
                  .ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Committed("SELECT id, text, parent_id FROM notes ORDER BY id"),
            (std::vector<std::vector<std::string>>{{"30", "a", "NULL"}, {"31", "orphan", "NULL"}}));
}

TEST_F(ParticipantLockingTest, TriggersRunOnceAtCommit) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT)"),
                     Sql("CREATE TRIGGER account_added AFTER INSERT ON accounts BEGIN"
                         " INSERT INTO audit(what) VALUES ('added ' || new.id); END")})
                  .ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts VALUES (5, 'eve', 0)")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 5")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Committed("SELECT what FROM audit"),
            (std::vector<std::vector<std::string>>{{"added 5"}}));
}

}  // namespace
}  // namespace txcoord::participant::testing
