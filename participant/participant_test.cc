// Branch lifecycle: isolation until commit, re-applied changesets, durable
// prepare across reopen, idempotent phase-2 calls, one-phase commit, idle
// reaping, a client's Release.
#include "participant/participant.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant_observer.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

TEST_F(ParticipantTest, OpenUsesWalNormalSyncAndForeignKeys) {
  EXPECT_EQ(CommittedValue("PRAGMA journal_mode"), "wal");
  auto result = Local({Sql("PRAGMA synchronous"), Sql("PRAGMA foreign_keys")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(OnlyValue(result, 0), SqlValue(int64_t{1}));  // NORMAL: GroupCommit syncs
  EXPECT_EQ(OnlyValue(result, 1), SqlValue(int64_t{1}));
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM sqlite_schema WHERE name IN "
                           "('_txcoord_prepared', '_txcoord_outcomes')"),
            "2");
}

TEST_F(ParticipantTest, BranchWritesInvisibleUntilCommit) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 70 WHERE id = 1")}).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "70");
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
}

TEST_F(ParticipantTest, AbortDiscardsBranchWrites) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts VALUES (3, 'carol', 5)")}).ok());
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts"), "2");
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
}

TEST_F(ParticipantTest, AbortOfPreparedBranchDeletesItsRow) {
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM accounts WHERE id = 2")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts"), "2");
  EXPECT_TRUE(participant_->ListPrepared().empty());
}

TEST_F(ParticipantTest, LaterCallsSeeAndExtendEarlierWrites) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts VALUES (10, 'dave', 1)")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = balance + 41 WHERE id = 10")}).ok());
  auto read = Exec(kTx1, {Sql("SELECT balance FROM accounts WHERE id = ?1", {int64_t{10}})});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(OnlyValue(read), SqlValue(int64_t{42}));
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts WHERE id = 10"), "0");

  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Committed("SELECT owner, balance FROM accounts WHERE id = 10"),
            (std::vector<std::vector<std::string>>{{"dave", "42"}}));
}

TEST_F(ParticipantTest, InsertThenDeleteLeavesAReadOnlyBranch) {
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO accounts VALUES (10, 'dave', 1)")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("DELETE FROM accounts WHERE id = 10")}).ok());
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kReadOnly);
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, FailedStatementLeavesBranchAsItWas) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  auto failed = Exec(kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1"),
                            Sql("INSERT INTO accounts VALUES (2, 'dup', 0)")});
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(failed.status().message(), HasSubstr("statements[1]"));
  EXPECT_THAT(failed.status().message(), HasSubstr("UNIQUE constraint failed"));
  auto syntax = Exec(kTx1, {Sql("UPDATE accounts SET balance = 3 WHERE id = 1"), Sql("SELEC 1")});
  ASSERT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().message(), HasSubstr("syntax error"));

  auto read = Exec(kTx1, {Sql("SELECT balance FROM accounts WHERE id = 1")});
  EXPECT_EQ(OnlyValue(read), SqlValue(int64_t{1}));
}

TEST_F(ParticipantTest, PhaseTwoCallsAreIdempotent) {
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);  // unknown
  EXPECT_TRUE(participant_->Commit(kTx1).ok());               // unknown: done before
  EXPECT_TRUE(participant_->Abort(kTx1).ok());

  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "0");

  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 9 WHERE id = 2")}).ok());
  EXPECT_TRUE(participant_->Abort(kTx2).ok());
  EXPECT_TRUE(participant_->Abort(kTx2).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "0");
}

TEST_F(ParticipantTest, BatchAnswersEachEntryAsItsOwnCallWouldInOrder) {
  constexpr char kTx3[] = "c1.1.3";
  constexpr char kTx4[] = "c1.1.4";
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  // Enlisted by its first write, then nothing left to write.
  ASSERT_TRUE(Exec(kTx3, {Sql("INSERT INTO accounts VALUES (5, 'eve', 5)")}).ok());
  ASSERT_TRUE(Exec(kTx3, {Sql("DELETE FROM accounts WHERE id = 5")}).ok());
  ASSERT_TRUE(Exec(kTx4, {Sql("INSERT INTO accounts VALUES (4, 'dan', 4)")}).ok());
  const uint64_t token4 = enlister_.calls().back().token;
  const std::vector<BatchAnswer> answers = participant_->RunBatch({
      {BranchOp::kPrepare, kTx1},
      {BranchOp::kCommit, kTx1},  // after its Prepare: applies
      {BranchOp::kCommit, kTx2},  // unprepared: refused, as Commit
      {BranchOp::kAbort, kTx2},
      {BranchOp::kPrepare, kTx3},              // wrote nothing: READ_ONLY
      {BranchOp::kPrepare, "c1.1.9"},          // unknown: NO
      {BranchOp::kPrepare, kTx4, token4 + 1},  // another branch's token: NO
  });
  ASSERT_EQ(answers.size(), 7u);
  EXPECT_TRUE(answers[0].status.ok());
  EXPECT_EQ(answers[0].vote, Vote::kYes);
  EXPECT_TRUE(answers[1].status.ok()) << answers[1].status;
  EXPECT_EQ(answers[2].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(answers[3].status.ok());
  EXPECT_EQ(answers[4].vote, Vote::kReadOnly);
  EXPECT_EQ(answers[5].vote, Vote::kNo);
  EXPECT_EQ(answers[6].vote, Vote::kNo);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "50");
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts WHERE id = 4"), "0");
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, CommitOfUnpreparedBranchFails) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->Commit(kTx1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(participant_->BranchCount(), 1u);
}

TEST_F(ParticipantTest, ExecuteOnPreparedBranchFails) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 2")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(Exec(kTx1, {Sql("SELECT 1")}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ParticipantTest, CommitOnePhaseAnswersTheSameWhenRetried) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  Reopen();
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(participant_->CommitOnePhase(kTx2).value(), Outcome::kAborted);  // never seen
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, CommitOnePhaseOfPreparedBranchCommits) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
}

TEST_F(ParticipantTest, CommitOnePhaseAbortsWhenChangesNoLongerApply) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  WriteBehindAgentsBack("UPDATE accounts SET balance = 5 WHERE id = 1");
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kAborted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "5");
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, PrepareVotesNoWhenChangesNoLongerApply) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  WriteBehindAgentsBack("DELETE FROM accounts WHERE id = 1");
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
}

// A changeset that stops applying part-way leaves none of itself behind:
// the apply runs without a savepoint of its own, in the caller's
// transaction or savepoint, which is rolled back. The sessions extension
// holds a changeset's tables in the order they were first changed, so the
// branch's accounts rows apply before its notes row, which conflicts.
class PartWayTest : public ParticipantTest {
 protected:
  void SetUp() override {
    ParticipantTest::SetUp();
    ASSERT_TRUE(Local({Sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"),
                       Sql("INSERT INTO notes VALUES (1, 'n')")})
                    .ok());
  }
  absl::StatusOr<ExecuteResult> WriteBoth(const std::string& txid) {
    return Exec(txid, {Sql("UPDATE accounts SET balance = 0"),
                       Sql("UPDATE notes SET body = 'x' WHERE id = 1")});
  }
  // Committed state as the first write left it, and no transaction left
  // open on the agent's connection (a local write goes through).
  void ExpectNothingLeftBehind() {
    EXPECT_EQ(CommittedValue(
                  "SELECT group_concat(balance) FROM (SELECT balance FROM accounts ORDER BY id)"),
              "100,50");
    EXPECT_EQ(CommittedValue("SELECT body FROM notes WHERE id = 1"), "changed");
    absl::StatusOr<ExecuteResult> local = Local({Sql("INSERT INTO notes VALUES (2, 'free')")});
    EXPECT_TRUE(local.ok()) << local.status();
  }
};

TEST_F(PartWayTest, AtPrepareTheBranchVotesNoAndLeavesNothing) {
  ASSERT_TRUE(WriteBoth(kTx1).ok());
  WriteBehindAgentsBack("UPDATE notes SET body = 'changed' WHERE id = 1");
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  ExpectNothingLeftBehind();
}

TEST_F(PartWayTest, AtAOnePhaseCommitTheBranchAbortsAndLeavesNothing) {
  ASSERT_TRUE(WriteBoth(kTx1).ok());
  WriteBehindAgentsBack("UPDATE notes SET body = 'changed' WHERE id = 1");
  EXPECT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kAborted);
  EXPECT_EQ(participant_->BranchCount(), 0u);
  ExpectNothingLeftBehind();
}

TEST_F(PartWayTest, AtPhaseTwoTheBranchStaysPreparedAndLeavesNothing) {
  ASSERT_TRUE(WriteBoth(kTx1).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  WriteBehindAgentsBack("UPDATE notes SET body = 'changed' WHERE id = 1");
  absl::Status committed = participant_->Commit(kTx1);
  EXPECT_TRUE(absl::IsInternal(committed)) << committed;
  EXPECT_EQ(participant_->ListPrepared().size(), 1u);
  ExpectNothingLeftBehind();
}

TEST_F(PartWayTest, AtALaterExecuteTheCallFailsAndLeavesNothing) {
  ASSERT_TRUE(WriteBoth(kTx1).ok());
  WriteBehindAgentsBack("UPDATE notes SET body = 'changed' WHERE id = 1");
  absl::StatusOr<ExecuteResult> again =
      Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 2")});
  EXPECT_TRUE(absl::IsInternal(again.status())) << again.status();
  ExpectNothingLeftBehind();
}

TEST_F(ParticipantTest, PreparedBranchSurvivesReopenWithItsLocks) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 8 WHERE id = 2")}).ok());  // lost
  Reopen();

  std::vector<PreparedBranch> prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0].txid, kTx1);
  EXPECT_EQ(prepared[0].coordinator, "c1");
  EXPECT_EQ(participant_->BranchCount(), 1u);
  EXPECT_EQ(participant_->Prepare(kTx2).value(), Vote::kNo);

  auto blocked =
      Exec("c1.1.3", {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}, absl::Milliseconds(50));
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(blocked.status().message(), HasSubstr("held by txid c1.1.1"));

  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "7");
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, ListPreparedIsOldestFirst) {
  int64_t id = 0;
  for (const char* txid : {"c1.1.5", "c1.1.4", "c1.1.6"}) {
    // Explicit keys: branches that let SQLite pick the next rowid all pick
    // the same one, and so wait for each other.
    ASSERT_TRUE(
        Exec(txid, {Sql("INSERT INTO users VALUES (?1, ?2)", {++id, std::string(txid)})}).ok());
    ASSERT_EQ(participant_->Prepare(txid).value(), Vote::kYes);
  }
  std::vector<PreparedBranch> prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 3u);
  EXPECT_LE(prepared[0].prepared_at, prepared[1].prepared_at);
  EXPECT_LE(prepared[1].prepared_at, prepared[2].prepared_at);
  Reopen();  // the order comes from the stored rows too
  prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 3u);
  EXPECT_LE(prepared[0].prepared_at, prepared[1].prepared_at);
  EXPECT_LE(prepared[1].prepared_at, prepared[2].prepared_at);
}

TEST_F(ParticipantTest, IdleUnpreparedBranchesAreRolledBack) {
  options_.branch_idle_timeout = absl::Seconds(60);
  Reopen();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx2).value(), Vote::kYes);

  EXPECT_EQ(participant_->ReapIdleBranches(absl::Now()), 0u);  // not idle yet
  EXPECT_EQ(participant_->ReapIdleBranches(absl::Now() + absl::Minutes(2)), 1u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  EXPECT_EQ(participant_->ListPrepared().size(), 1u);  // prepared ones stay
}

TEST_F(ParticipantTest, MaintenanceOnTheSchedulerRollsBackIdleBranches) {
  testing::FakeScheduler scheduler;
  options_.clock = &scheduler;
  options_.scheduler = &scheduler;
  options_.branch_idle_timeout = absl::Seconds(10);  // looked at every 2.5s
  Reopen();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx2).value(), Vote::kYes);
  scheduler.Advance(absl::Seconds(10));
  EXPECT_EQ(participant_->BranchCount(), 2u);  // idle for exactly the timeout
  scheduler.Advance(absl::Milliseconds(2500));
  EXPECT_EQ(participant_->BranchCount(), 1u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  EXPECT_EQ(participant_->ListPrepared().size(), 1u);  // prepared ones stay
  participant_.reset();                                // before the scheduler it runs on
}

TEST_F(ParticipantTest, SetPolicyStartsReapingIdleBranchesAtTheNextRound) {
  testing::FakeScheduler scheduler;
  options_.clock = &scheduler;
  options_.scheduler = &scheduler;
  options_.branch_idle_timeout = absl::ZeroDuration();  // never: a round a minute
  Reopen();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  scheduler.Advance(absl::Minutes(2));
  EXPECT_EQ(participant_->BranchCount(), 1u);
  ParticipantPolicy policy = participant_->policy();
  policy.branch_idle_timeout = absl::Seconds(10);
  ASSERT_TRUE(participant_->SetPolicy(policy).ok());
  scheduler.Advance(absl::Minutes(1));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  participant_.reset();  // before the scheduler it runs on
}

TEST_F(ParticipantTest, ClosedParticipantLeavesNoTimerBehind) {
  testing::FakeScheduler scheduler;
  options_.clock = &scheduler;
  options_.scheduler = &scheduler;
  Reopen();
  EXPECT_EQ(scheduler.pending(), 1u);
  participant_.reset();
  EXPECT_EQ(scheduler.pending(), 0u);
}

TEST_F(ParticipantTest, LocalBatchIsOneTransaction) {
  auto failed = Local({Sql("INSERT INTO accounts VALUES (3, 'carol', 5)"),
                       Sql("INSERT INTO accounts VALUES (1, 'dup', 0)")});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts"), "2");

  auto ok = Local({Sql("INSERT INTO accounts VALUES (3, 'carol', 5)"),
                   Sql("SELECT owner FROM accounts WHERE id = 3")});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->results[0].changes, 1);
  EXPECT_EQ(ok->results[0].last_insert_rowid, 3);
  EXPECT_EQ(OnlyValue(ok, 1), SqlValue(std::string("carol")));
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, ResultsBeyondTheLimitsAreRefused) {
  options_.max_rows_per_statement = 5;
  options_.max_result_bytes = 1000;
  Reopen();
  const std::string ten_rows =
      "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) "
      "SELECT x FROM n";
  EXPECT_EQ(Local({Sql(ten_rows)}).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Exec(kTx1, {Sql(ten_rows)}).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Local({Sql("SELECT zeroblob(2000)")}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Local({Sql(ten_rows + " LIMIT 5")}).ok());
}

// Release: a client rolls back its unprepared branch at once; a prepared
// branch is left to the coordinator; an unknown txid is no error.

TEST_F(ParticipantTest, ReleaseRollsBackAnUnpreparedBranchAndFreesItsLocks) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t enlisted = enlister_.calls().at(0).token;
  ASSERT_GT(participant_->LockCount(), 0u);

  const ReleaseResult released = participant_->Release(kTx1);
  EXPECT_TRUE(released.released) << released.detail;
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  // Another branch gets the row without waiting; the released one votes NO.
  EXPECT_TRUE(
      Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}, absl::Milliseconds(1))
          .ok());
  EXPECT_EQ(participant_->Prepare(kTx1, enlisted).value(), Vote::kNo);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(ParticipantTest, ReleaseLeavesAPreparedBranchToTheCoordinator) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                   absl::ZeroDuration(), /*prepare=*/true)
                  .ok());
  const ReleaseResult released = participant_->Release(kTx1);
  EXPECT_FALSE(released.released);
  EXPECT_THAT(released.detail, HasSubstr("is prepared"));
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
}

TEST_F(ParticipantTest, ReleaseOfATxidWithNoBranchHereReleasesNothing) {
  ReleaseResult released = participant_->Release(kTx1);
  EXPECT_FALSE(released.released);
  EXPECT_THAT(released.detail, HasSubstr("no branch"));
  // A read leaves no branch behind either, and a second Release is a no-op.
  ASSERT_TRUE(Exec(kTx1, {Sql("SELECT * FROM accounts")}).ok());
  EXPECT_FALSE(participant_->Release(kTx1).released);
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(participant_->Release(kTx2).released);
  EXPECT_FALSE(participant_->Release(kTx2).released);
}

// Counts commits, and tells a waiting test about the first.
class CommitObserver final : public ParticipantObserver {
 public:
  void OnExecute(absl::Duration, const absl::Status&) override {}
  void OnLockTimeout() override {}
  void OnPrepare(Vote) override {}
  void OnCommit() override {
    if (!applied.HasBeenNotified()) applied.Notify();
  }
  void OnAbort(RollbackReason) override {}
  absl::Notification applied;
};

// A phase-2 Commit's answer waits (phase2_sync_delay) for a sync another
// call starts; a read of what it applied does not sync for it, and a
// local write's sync covers it and releases the answer.
TEST_F(ParticipantTest, APhaseTwoCommitWaitsForAnotherCallsSyncAndReadsDoNotSyncForIt) {
  CommitObserver observer;
  options_.observer = &observer;
  options_.phase2_sync_delay = absl::Seconds(60);  // never passes here
  Reopen();
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}).ok());
  ASSERT_EQ(participant_->Prepare("c1.1.1").value(), Vote::kYes);
  const uint64_t syncs = participant_->SyncCount();
  std::atomic<bool> answered{false};
  std::thread phase2([&] {
    EXPECT_TRUE(participant_->Commit("c1.1.1").ok());
    answered = true;
  });
  observer.applied.WaitForNotification();
  absl::StatusOr<ExecuteResult> read = Local({Sql("SELECT balance FROM accounts WHERE id = 1")});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(std::get<int64_t>(OnlyValue(read)), 0);
  EXPECT_EQ(participant_->SyncCount(), syncs) << "the read synced for the phase-2 apply";
  EXPECT_FALSE(answered) << "the Commit answered before a sync covered it";
  // A local write is durable before its answer: that sync covers the
  // apply too.
  ASSERT_TRUE(Local({Sql("INSERT INTO parents VALUES (2, 'p2')")}).ok());
  phase2.join();
  EXPECT_TRUE(answered);
  EXPECT_EQ(participant_->SyncCount(), syncs + 1);
  EXPECT_EQ(participant_->Phase2SyncCounts().shared, 1u);
  EXPECT_EQ(participant_->Phase2SyncCounts().own, 0u);
}

}  // namespace
}  // namespace txcoord::participant::testing
