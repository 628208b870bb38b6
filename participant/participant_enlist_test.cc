// Enlisting with the coordinator: once, on a branch's first write, before
// Execute returns; early prepare reporting the vote; what a refused or
// unanswered call does to the branch.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Call = FakeEnlister::Call;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

TEST_F(ParticipantTest, FirstWriteEnlistsExactlyOnce) {
  ASSERT_TRUE(Exec(kTx1, {Sql("SELECT * FROM accounts")}).ok());
  EXPECT_TRUE(enlister_.calls().empty());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  ASSERT_TRUE(Exec(kTx1, {Sql("SELECT * FROM accounts")}).ok());
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, false}));
}

TEST_F(ParticipantTest, EnlistRunsWithoutParticipantLocks) {
  // Another call into the participant from inside Enlist would deadlock if
  // Execute held its connection lock across the call.
  absl::StatusOr<ExecuteResult> nested;
  enlister_.SetHook([&] {
    enlister_.SetHook(nullptr);
    nested = Exec(kTx2, {Sql("SELECT balance FROM accounts WHERE id = 2")});
  });
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  EXPECT_TRUE(nested.ok()) << nested.status();
}

TEST_F(ParticipantTest, ReadOnlyBranchIsNotEnlistedAndVotesReadOnly) {
  auto result = Exec(kTx1, {Sql("SELECT count(*) FROM accounts")}, absl::ZeroDuration(),
                     /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kReadOnly);
  EXPECT_EQ(OnlyValue(result), SqlValue(int64_t{2}));
  EXPECT_TRUE(enlister_.calls().empty());
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, RefusedEnlistDropsTheBranch) {
  enlister_.FailNext(absl::FailedPreconditionError("transaction c1.1.1 is ABORTED"));
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")});
  ASSERT_EQ(result.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(result.status().message(), HasSubstr("transaction c1.1.1 is ABORTED"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  EXPECT_TRUE(
      Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}, absl::Milliseconds(50))
          .ok());
}

TEST_F(ParticipantTest, UnansweredEnlistDropsTheBranch) {
  enlister_.FailNext(absl::UnavailableError("coordinator unreachable"));
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")});
  ASSERT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("coordinator unreachable"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, PrepareInExecuteReportsTheVoteOnce) {
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);  // a racing Prepare
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
}

// An Execute that prepares stores the branch in the transaction its
// statements ran in, with a trial apply first unless the schema makes the
// apply sure (AppliesAsRecorded): the fixture's foreign key asks for one,
// and the param drops it.
class PrepareInExecuteTest : public ParticipantTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    ParticipantTest::SetUp();
    if (!GetParam()) {
      ASSERT_TRUE(Local({Sql("DROP TABLE children")}).ok());
    }
  }
  std::string Balances() {
    return CommittedValue(
        "SELECT group_concat(balance) FROM (SELECT balance FROM accounts ORDER BY id)");
  }
};

TEST_P(PrepareInExecuteTest, EarlierAndNewChangesAreStoredAndAppliedOnlyAtCommit) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  EXPECT_EQ(Balances(), "100,50");
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Balances(), "1,2");
}

TEST_P(PrepareInExecuteTest, AFailedStatementLeavesTheBranchAsItWas) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  auto result = Exec(kTx1,
                     {Sql("UPDATE accounts SET balance = 2 WHERE id = 2"),
                      Sql("INSERT INTO accounts VALUES (1, 'again', 0)")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("UNIQUE"));
  EXPECT_TRUE(participant_->ListPrepared().empty());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  EXPECT_EQ(Balances(), "100,50");
  // The branch keeps its earlier change alone.
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Balances(), "1,50");
}

INSTANTIATE_TEST_SUITE_P(ForeignKeys, PrepareInExecuteTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WithATrialApply" : "StoredAsRecorded";
                         });

TEST_F(ParticipantTest, PrepareInExecuteOfAUniqueSwapThatCannotApplyRollsTheBranchBack) {
  // Without foreign keys, the UNIQUE email alone asks for the trial apply:
  // the changeset's two updates conflict in either order, though the
  // statements ran.
  ASSERT_TRUE(
      Local({Sql("DROP TABLE children"), Sql("INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x')")})
          .ok());
  auto result = Exec(kTx1,
                     {Sql("UPDATE users SET email = 'tmp' WHERE id = 1"),
                      Sql("UPDATE users SET email = 'a@x' WHERE id = 2"),
                      Sql("UPDATE users SET email = 'b@x' WHERE id = 1")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("cannot prepare, branch rolled back"));
  EXPECT_THAT(result.status().message(), HasSubstr("a constraint fails"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  EXPECT_EQ(CommittedValue("SELECT email FROM users WHERE id = 1"), "a@x");
}

TEST_F(ParticipantTest, PrepareInExecuteOfANocaseKeyRenamedToAnotherCaseRollsTheBranchBack) {
  // The session records the rename as an update of 'abc' and an insert of
  // 'ABC', one row to the table: they conflict when applied, though the
  // statement ran. The key's collation asks for the trial apply.
  ASSERT_TRUE(Local({Sql("DROP TABLE children"),
                     Sql("CREATE TABLE tags(name TEXT PRIMARY KEY COLLATE NOCASE, n INTEGER)"),
                     Sql("INSERT INTO tags VALUES ('abc', 1)")})
                  .ok());
  auto result = Exec(kTx1, {Sql("UPDATE tags SET name = 'ABC' WHERE name = 'abc'")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("cannot prepare, branch rolled back"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  EXPECT_EQ(CommittedValue("SELECT name FROM tags"), "abc");
}

TEST_F(ParticipantTest, PrepareInExecuteOfARealKeyInsertedThenUpdatedRollsTheBranchBack) {
  // The session reads the key back as 1.0 at the update, though the insert
  // gave 1: two changes of one row, which collide when applied.
  ASSERT_TRUE(
      Local({Sql("DROP TABLE children"), Sql("CREATE TABLE readings(k REAL PRIMARY KEY, v TEXT)")})
          .ok());
  auto result = Exec(
      kTx1,
      {Sql("INSERT INTO readings VALUES (1, 'a')"), Sql("UPDATE readings SET v = 'b' WHERE k = 1")},
      absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("cannot prepare, branch rolled back"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
}

TEST_F(ParticipantTest, PrepareInExecuteOfAStrictAnyKeyReinsertedAsARealRollsTheBranchBack) {
  // STRICT keeps 2 and 2.0 apart in an ANY column: the session records two
  // inserts of what the table holds as one row.
  ASSERT_TRUE(Local({Sql("DROP TABLE children"),
                     Sql("CREATE TABLE slots(k ANY PRIMARY KEY, v TEXT) STRICT")})
                  .ok());
  auto result =
      Exec(kTx1,
           {Sql("INSERT INTO slots VALUES (2, 'a')"), Sql("DELETE FROM slots WHERE k = 2"),
            Sql("INSERT INTO slots VALUES (2.0, 'b')")},
           absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("cannot prepare, branch rolled back"));
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
}

TEST_F(ParticipantTest, PrepareInExecuteThatBreaksADeferredForeignKeyRollsTheBranchBack) {
  // The statements run, since a deferred key is checked only at COMMIT,
  // which the run never reaches; the trial apply checks it. This key is the
  // schema's only one.
  ASSERT_TRUE(Local({Sql("DROP TABLE children"),
                     Sql("CREATE TABLE orders(id INTEGER PRIMARY KEY, parent_id INTEGER"
                         " REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)")})
                  .ok());
  auto result = Exec(kTx1, {Sql("INSERT INTO orders VALUES (1, 99)")}, absl::ZeroDuration(),
                     /*prepare=*/true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("cannot prepare, branch rolled back"));
  EXPECT_THAT(result.status().message(), HasSubstr("FOREIGN KEY"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM orders"), "0");
}

TEST_F(ParticipantTest, PrepareInExecuteOfEnlistedBranchReportsTheVote) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  auto result = participant_->Execute(kTx1, {}, /*prepare=*/true, absl::ZeroDuration());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, false}, Call{kTx1, true}));
}

TEST_F(ParticipantTest, RefusedVoteAnswersAbortedAndKeepsTheBranchPrepared) {
  enlister_.FailNext(absl::AbortedError("transaction timed out"));
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(result.status().message(), HasSubstr("transaction timed out"));
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));  // a refusal is not resent
  // The coordinator's Prepare may have counted it: only its outcome ends it.
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
}

TEST_F(ParticipantTest, UnansweredVoteIsResentUntilTheCoordinatorAnswers) {
  enlister_.FailNext(absl::DeadlineExceededError("no answer"));
  enlister_.FailNext(absl::UnavailableError("connection refused"));
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  std::vector<Call> calls = enlister_.calls();
  EXPECT_THAT(calls, ElementsAre(Call{kTx1, true}, Call{kTx1, true}, Call{kTx1, true}));
  EXPECT_EQ(calls[2].token, calls[0].token);  // the same branch each time
}

TEST_F(ParticipantTest, VoteThatNeverReachesTheCoordinatorAnswersAbortedAndStaysPrepared) {
  enlister_.Down(absl::UnavailableError("coordinator unreachable"));
  auto result = Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                     absl::ZeroDuration(), /*prepare=*/true);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(result.status().message(), HasSubstr("coordinator unreachable"));
  EXPECT_THAT(result.status().message(), HasSubstr("do not commit this transaction"));
  EXPECT_THAT(result.status().message(), HasSubstr("call Abort on the txid"));
  EXPECT_GT(enlister_.calls().size(), 1u);
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  EXPECT_GT(participant_->LockCount(), 0u);
  // Resolved as the coordinator decides (here: its presumed abort).
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(ParticipantTest, VoteResendsStopBeforeTheCallDeadline) {
  options_.vote_retry_time = absl::Minutes(1);
  Reopen();
  enlister_.Down(absl::UnavailableError("coordinator unreachable"));
  const absl::Time call_deadline = absl::Now() + absl::Seconds(1);
  auto result = participant_->Execute(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                                      /*prepare=*/true, absl::ZeroDuration(), call_deadline);
  EXPECT_LT(absl::Now(), call_deadline);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(participant_->ListPrepared().size(), 1u);
}

// Branch tokens: the coordinator holds the token of the branch it enlisted
// and asks about that one; a branch started after it was lost is another.

TEST_F(ParticipantTest, EveryBranchEnlistsUnderItsOwnToken) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  ASSERT_TRUE(participant_->Execute(kTx1, {}, /*prepare=*/true, absl::ZeroDuration()).ok());
  std::vector<Call> calls = enlister_.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_NE(calls[0].token, 0u);
  EXPECT_NE(calls[0].token, calls[1].token);
  EXPECT_EQ(calls[2].token, calls[0].token);  // the vote names the same branch
}

TEST_F(ParticipantTest, BranchStartedAfterAnIdleRollbackIsNotTakenForTheLostOne) {
  options_.branch_idle_timeout = absl::Minutes(10);  // reaped by hand below
  Reopen();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t enlisted = enlister_.calls().at(0).token;
  ASSERT_EQ(participant_->ReapIdleBranches(absl::Now() + absl::Hours(1)), 1u);
  // The client goes on with a read: no write, so no new Enlist to trip on.
  ASSERT_TRUE(Exec(kTx1, {Sql("SELECT balance FROM accounts WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->Prepare(kTx1, enlisted).value(), Vote::kNo);
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

// A coordinator that took an Enlist of epoch 2 has restarted (or was
// replaced) since epoch 1: epoch 1's open transactions are aborted there.
TEST_F(ParticipantTest, EnlistOfALaterEpochRollsBackUnpreparedBranchesOfEarlierOnes) {
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec("c1.1.2", {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")},
                   absl::ZeroDuration(), /*prepare=*/true)
                  .ok());
  ASSERT_TRUE(Exec("c2.1.1", {Sql("INSERT INTO accounts VALUES (3, 'carol', 3)")}).ok());
  ASSERT_EQ(participant_->BranchCount(), 3u);

  ASSERT_TRUE(Exec("c1.2.1", {Sql("INSERT INTO accounts VALUES (4, 'dave', 4)")}).ok());
  // Gone: c1.1.1 and its lock. Kept: the prepared branch (the coordinator's
  // outcome ends it), the other coordinator's, and the new one.
  EXPECT_EQ(participant_->BranchCount(), 3u);
  EXPECT_TRUE(
      Exec("c1.2.2", {Sql("UPDATE accounts SET balance = 5 WHERE id = 1")}, absl::Milliseconds(50))
          .ok());
  EXPECT_EQ(participant_->Prepare("c1.1.1").value(), Vote::kNo);
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  EXPECT_EQ(participant_->ListPrepared()[0].txid, "c1.1.2");
  // c2.1.1 still sees the row it inserted.
  absl::StatusOr<ExecuteResult> other =
      Exec("c2.1.1", {Sql("UPDATE accounts SET balance = 6 WHERE id = 3")});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->results.at(0).changes, 1);
}

TEST_F(ParticipantTest, NamedEnlistOfALaterEpochRollsBackUnpreparedBranchesOfEarlierOnes) {
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  enlister_.HoldAsync();
  ExecuteOptions named;
  named.named_in_commit = true;
  ASSERT_TRUE(participant_
                  ->Execute("c1.2.1", {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")},
                            std::move(named))
                  .ok());
  // Not before the coordinator answered: the epoch is not known yet.
  EXPECT_EQ(participant_->BranchCount(), 2u);
  ASSERT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  EXPECT_EQ(participant_->BranchCount(), 1u);
  EXPECT_EQ(participant_->LockCount(), 1u);
}

TEST_F(ParticipantTest, OnePhaseCommitAskedAgainAfterTheEpochsRollbackAnswersAborted) {
  // The restarted coordinator asks a logged one-phase commit again; if the
  // agent has rolled the branch back meanwhile, the outcome is ABORTED.
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t token = enlister_.calls().at(0).token;
  ASSERT_TRUE(Exec("c1.2.1", {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->CommitOnePhase("c1.1.1", token).value(), Outcome::kAborted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(ParticipantTest, ALowerEpochAfterABackupRestoreIsServedAndNotRolledBack) {
  // A coordinator restored from a backup serves an epoch below the one the
  // agent saw: its transactions run, and enlisting one makes its epoch the
  // one served, so they are not taken for left behind.
  ASSERT_TRUE(Exec("c1.5.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec("c1.3.1", {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->ReapIdleBranches(absl::Now()), 0u);
  EXPECT_TRUE(Exec("c1.3.1", {Sql("SELECT balance FROM accounts WHERE id = 2")}).ok());
  EXPECT_EQ(participant_->BranchCount(), 2u);
}

// c1.1.1 (enlisted) waits for a row of c1.1.5 when c1.2.1 enlists: the
// epoch's rollback passes the busy c1.1.1 by, and frees c1.1.5's row, so
// that c1.1.1's call ends well. Returns with c1.1.1 left behind but alive.
class EpochLeftBehindWhileBusyTest : public ParticipantTest {
 protected:
  void SetUp() override {
    options_.on_lock_wait = [this](const std::string&, const std::string&) {
      std::function<void()> hook = std::exchange(on_lock_wait_, nullptr);
      if (hook) hook();
    };
    ParticipantTest::SetUp();
    ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
    ASSERT_TRUE(Exec("c1.1.5", {Sql("UPDATE accounts SET balance = 5 WHERE id = 2")}).ok());
    absl::StatusOr<ExecuteResult> newer;
    on_lock_wait_ = [&] {
      newer = Exec("c1.2.1", {Sql("INSERT INTO accounts VALUES (3, 'carol', 3)")});
    };
    ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
    ASSERT_TRUE(newer.ok()) << newer.status();
    ASSERT_EQ(participant_->BranchCount(), 2u);  // c1.1.1 and c1.2.1
  }
  std::function<void()> on_lock_wait_;
};

TEST_F(EpochLeftBehindWhileBusyTest, ItsNextCallIsRefusedAndRollsItBack) {
  absl::StatusOr<ExecuteResult> late = Exec("c1.1.1", {Sql("SELECT 1")});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kAborted) << late.status();
  EXPECT_THAT(late.status().message(), HasSubstr("coordinator c1 now serves epoch 2"));
  EXPECT_EQ(participant_->BranchCount(), 1u);
  EXPECT_EQ(participant_->LockCount(), 1u);  // c1.2.1's row
  EXPECT_EQ(participant_->Prepare("c1.1.1").value(), Vote::kNo);
}

TEST_F(EpochLeftBehindWhileBusyTest, MaintenanceRollsItBack) {
  // Not idle (the idle timeout is off here): rolled back for its epoch.
  EXPECT_EQ(participant_->ReapIdleBranches(absl::Now()), 1u);
  EXPECT_EQ(participant_->BranchCount(), 1u);
  EXPECT_EQ(participant_->LockCount(), 1u);
  EXPECT_EQ(participant_->Prepare("c1.1.1").value(), Vote::kNo);
}

TEST_F(ParticipantTest, OnePhaseCommitOfAReplacedBranchAborts) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t enlisted = enlister_.calls().at(0).token;
  Reopen();  // the unprepared branch is lost
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")}).ok());
  ASSERT_EQ(enlister_.calls().size(), 2u);
  EXPECT_NE(enlister_.calls()[1].token, enlisted);
  EXPECT_EQ(participant_->CommitOnePhase(kTx1, enlisted).value(), Outcome::kAborted);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "50");
}

// A one-phase commit whose answer was lost, then a later Execute under the
// same txid (a client's retry, a read) that starts another branch: asked
// again (a retry, or the coordinator's recovery), the agent must answer
// the committed outcome it stored, not the replacement's rollback.
TEST_F(ParticipantTest, OnePhaseAskedAgainAfterAReplacementBranchAnswersItsStoredOutcome) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t enlisted = enlister_.calls().at(0).token;
  ASSERT_EQ(participant_->CommitOnePhase(kTx1, enlisted).value(), Outcome::kCommitted);
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 3 WHERE id = 2")}).ok());
  ASSERT_EQ(enlister_.calls().size(), 2u);  // a new branch, under a new token
  EXPECT_EQ(participant_->CommitOnePhase(kTx1, enlisted).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "1");
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 2"), "50");  // rolled back
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, PreparedBranchKeepsItsTokenAcrossARestart) {
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  const uint64_t enlisted = enlister_.calls().at(0).token;
  ASSERT_EQ(participant_->Prepare(kTx1, enlisted).value(), Vote::kYes);
  Reopen();
  EXPECT_EQ(participant_->Prepare(kTx1, enlisted).value(), Vote::kYes);  // a resent Prepare
  EXPECT_EQ(participant_->Prepare(kTx1, enlisted + 1).value(), Vote::kNo);
  EXPECT_TRUE(participant_->ListPrepared().empty());
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM _txcoord_prepared"), "0");
}

TEST_F(ParticipantTest, PreparedTableFromBeforeTokensIsUpgradedInPlace) {
  participant_.reset();
  WriteBehindAgentsBack(
      "DROP TABLE _txcoord_prepared;"
      "CREATE TABLE _txcoord_prepared(txid TEXT PRIMARY KEY, coordinator TEXT NOT NULL,"
      "  changeset BLOB NOT NULL, prepared_at_ms INTEGER NOT NULL)");
  Open();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_EQ(CommittedValue("SELECT branch_token != 0 FROM _txcoord_prepared"), "1");
}

}  // namespace
}  // namespace txcoord::participant::testing
