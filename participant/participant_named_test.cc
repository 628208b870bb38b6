// Execute for a client that names its branches in Commit (named_in_commit):
// the agent answers once the enlistment (or vote) is sent, and a refusal
// that arrives later rolls an unprepared branch back.
#include <cstddef>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/failpoint.h"
#include "common/vote_proof.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::ElementsAre;
using Call = FakeEnlister::Call;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

absl::StatusOr<ExecuteResult> ExecNamed(Participant& p, const std::string& txid,
                                        std::vector<SqlStatement> statements, bool prepare = false,
                                        bool carries_vote_proof = false) {
  ExecuteOptions options;
  options.prepare = prepare;
  options.named_in_commit = true;
  options.carries_vote_proof = carries_vote_proof;
  return p.Execute(txid, statements, std::move(options));
}

TEST_F(ParticipantTest, AnEarlyPrepareWithAKeySignsItsDurableVoteAndSendsNoEnlist) {
  enlister_.HoldAsync();
  enlister_.GiveVoteKey("key-of-svc", "svc.example:7001");
  absl::StatusOr<ExecuteResult> result =
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")},
                /*prepare=*/true, /*carries_vote_proof=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  EXPECT_TRUE(enlister_.calls().empty());
  EXPECT_EQ(result->endpoint, "svc.example:7001");
  EXPECT_TRUE(VerifyVote("key-of-svc",
                         VoteClaim{kTx1, "svc", result->branch_token, "svc.example:7001"},
                         result->vote_proof));
  // What the proof promises: the branch is prepared and durable (it
  // survives a restart), for the coordinator's phase 2 to commit.
  Reopen();
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Committed("SELECT balance FROM accounts WHERE id = 1"),
            (std::vector<std::vector<std::string>>{{"7"}}));
}

TEST_F(ParticipantTest, WithoutTheClientsWordOrAKeyTheVoteGoesByEnlist) {
  enlister_.HoldAsync();
  // A key, but the client does not carry proofs.
  enlister_.GiveVoteKey("key-of-svc", "svc.example:7001");
  absl::StatusOr<ExecuteResult> result = ExecNamed(
      *participant_, kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}, true, false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->vote_proof.empty());
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  // The client carries proofs, but the write does not prepare: its
  // enlistment goes, and a later vote too.
  result = ExecNamed(*participant_, kTx2, {Sql("UPDATE accounts SET balance = 8 WHERE id = 2")},
                     false, true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->vote_proof.empty());
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}, Call{kTx2, false}));
}

TEST_F(ParticipantTest, WithoutAKeyASignedVoteIsSentByEnlist) {
  enlister_.HoldAsync();
  absl::StatusOr<ExecuteResult> result = ExecNamed(
      *participant_, kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}, true, true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->vote_proof.empty());
  EXPECT_TRUE(result->endpoint.empty());
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
}

TEST_F(ParticipantTest, NamedExecuteAnswersBeforeTheEnlistmentIsAnswered) {
  enlister_.HoldAsync();
  absl::StatusOr<ExecuteResult> result =
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->branch_token, 0u);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, false}));
  EXPECT_EQ(enlister_.calls()[0].token, result->branch_token);
  // A second write in the branch enlists nothing more, same token.
  absl::StatusOr<ExecuteResult> again =
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 2")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->branch_token, result->branch_token);
  EXPECT_EQ(enlister_.calls().size(), 1u);
  EXPECT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  EXPECT_EQ(participant_->Prepare(kTx1, result->branch_token).value(), Vote::kYes);
}

TEST_F(ParticipantTest, NamedExecuteThatWroteNothingReportsNoBranch) {
  enlister_.HoldAsync();
  absl::StatusOr<ExecuteResult> result =
      ExecNamed(*participant_, kTx1, {Sql("SELECT count(*) FROM accounts")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->branch_token, 0u);
  EXPECT_TRUE(enlister_.calls().empty());
}

TEST_F(ParticipantTest, ARefusedNamedEnlistmentRollsTheBranchBackAndFreesItsLocks) {
  enlister_.HoldAsync();
  ASSERT_TRUE(
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  EXPECT_EQ(participant_->LockCount(), 1u);
  EXPECT_EQ(enlister_.AnswerHeld(absl::FailedPreconditionError("transaction is ABORTED")), 1u);
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  EXPECT_EQ(participant_->Prepare(kTx1).value(), Vote::kNo);
  EXPECT_TRUE(
      Exec(kTx2, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}, absl::Milliseconds(50))
          .ok());
}

TEST_F(ParticipantTest, ANamedExecuteWhoseEnlistmentFailsAtOnceFailsToo) {
  enlister_.FailNext(absl::UnavailableError("no coordinator registered for c1"));
  absl::StatusOr<ExecuteResult> result =
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();
  EXPECT_THAT(result.status().message(), ::testing::HasSubstr("no coordinator registered"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
}

TEST_F(ParticipantTest, ANamedEarlyPrepareIsDurableBeforeTheVoteLeavesAndStaysOnARefusal) {
  enlister_.HoldAsync();
  absl::StatusOr<ExecuteResult> result = ExecNamed(
      *participant_, kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}, /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);  // stored before the vote was sent
  // Only the coordinator's outcome may end a prepared branch.
  EXPECT_EQ(enlister_.AnswerHeld(absl::UnavailableError("coordinator down")), 1u);
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  EXPECT_TRUE(participant_->ListPrepared().empty());
}

TEST_F(ParticipantTest, AnEnlistmentAnsweredAfterTheParticipantClosedIsIgnored) {
  enlister_.HoldAsync();
  ASSERT_TRUE(
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")}).ok());
  participant_.reset();
  EXPECT_EQ(enlister_.AnswerHeld(absl::FailedPreconditionError("too late")), 1u);
}

// Deferred votes (ParticipantOptions::vote_deferral): the Execute answers
// before its prepare is durable, and the vote goes by Enlist from the vote
// scheduler once a sync covers it.
class DeferredVoteTest : public ParticipantTest {
 protected:
  void SetUp() override {
    options_.scheduler = &scheduler_;
    options_.clock = &scheduler_;
    options_.vote_scheduler = &vote_scheduler_;
    options_.vote_deferral = vote_deferral_;
    ParticipantTest::SetUp();
    enlister_.HoldAsync();
    // A key, and a client that carries proofs: deferral still wins.
    enlister_.GiveVoteKey("key-of-svc", "svc.example:7001");
  }
  absl::StatusOr<ExecuteResult> PrepareEarly(const std::string& txid, const std::string& sql) {
    return ExecNamed(*participant_, txid, {Sql(sql)}, /*prepare=*/true,
                     /*carries_vote_proof=*/true);
  }
  // Runs what is due on the vote scheduler now (the deferred votes).
  void RunDue() { vote_scheduler_.Advance(absl::ZeroDuration()); }

  VoteDeferral vote_deferral_ = VoteDeferral::kAlways;  // set before SetUp
  FakeScheduler scheduler_;                             // maintenance
  FakeScheduler vote_scheduler_;                        // deferred votes
};

TEST_F(DeferredVoteTest, TheAnswerComesFirstAndTheVoteGoesByEnlistOnceDurable) {
  // The log's syncs when each Enlist leaves.
  std::vector<uint64_t> syncs_at_enlist;
  enlister_.SetAsyncHook([&] { syncs_at_enlist.push_back(participant_->SyncCount()); });
  absl::StatusOr<ExecuteResult> result =
      PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1");
  const uint64_t syncs_at_answer = participant_->SyncCount();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  EXPECT_TRUE(result->vote_deferred);
  EXPECT_TRUE(result->vote_proof.empty());
  EXPECT_TRUE(result->endpoint.empty());
  EXPECT_TRUE(enlister_.calls().empty());
  // Its vote counts as on its way: the resolver neither asks nor sends it.
  std::vector<PreparedBranch> prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_TRUE(prepared[0].vote_sending);
  EXPECT_FALSE(prepared[0].vote_unsent);

  RunDue();
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  EXPECT_EQ(enlister_.calls()[0].token, result->branch_token);
  // A sync came between the answer and the vote.
  ASSERT_EQ(syncs_at_enlist.size(), 1u);
  EXPECT_GT(syncs_at_enlist[0], syncs_at_answer);
  EXPECT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_FALSE(prepared[0].vote_sending);
  // Prepared it stays, across a restart too, for the coordinator's phase
  // 2 (a clean close syncs anyway: the counts above check the order).
  Reopen();
  ASSERT_EQ(participant_->ListPrepared().size(), 1u);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "7");
}

TEST_F(DeferredVoteTest, VotesQueuedTogetherLeaveAfterOneSync) {
  ASSERT_TRUE(PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1").ok());
  ASSERT_TRUE(PrepareEarly(kTx2, "UPDATE accounts SET balance = 8 WHERE id = 2").ok());
  // One run for both, on the vote scheduler; none on the maintenance one.
  EXPECT_EQ(vote_scheduler_.pending(), 1u);
  EXPECT_EQ(scheduler_.pending(), 1u);  // its own round
  const uint64_t syncs = participant_->SyncCount();
  RunDue();
  EXPECT_EQ(participant_->SyncCount(), syncs + 1);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}, Call{kTx2, true}));
}

TEST_F(DeferredVoteTest, ABranchTheCoordinatorKnowsAlreadyIsNotDeferred) {
  // An earlier write enlisted it: the coordinator would ask it with
  // Prepare at Commit, so its vote is signed into the answer as before.
  ASSERT_TRUE(
      ExecNamed(*participant_, kTx1, {Sql("UPDATE accounts SET balance = 6 WHERE id = 1")}).ok());
  EXPECT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  absl::StatusOr<ExecuteResult> result =
      PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->vote_deferred);
  EXPECT_FALSE(result->vote_proof.empty());
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, false}));
  RunDue();
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, false}));
}

TEST_F(DeferredVoteTest, ACleanStopSendsTheQueuedVotesAfterTheirSync) {
  ASSERT_TRUE(PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1").ok());
  const uint64_t syncs = participant_->SyncCount();
  participant_->SendDeferredVotesNow();
  EXPECT_EQ(participant_->SyncCount(), syncs + 1);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  RunDue();  // the scheduled run finds nothing left
  EXPECT_EQ(enlister_.calls().size(), 1u);
}

// A clean stop that finds the votes taken already by a run of the vote
// scheduler (held between taking them and their sync) returns only once
// that run has handed them to the enlister: the process may end right
// after it returns.
TEST_F(DeferredVoteTest, ACleanStopWaitsForARunThatTookTheVotesFirst) {
  ASSERT_TRUE(PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1").ok());
  absl::Notification reached, release;
  SetFailpointHook("before-deferred-votes-durable", [&] {
    reached.Notify();
    release.WaitForNotification();
  });
  std::thread run([this] { RunDue(); });
  reached.WaitForNotification();
  absl::Notification stopped;
  size_t calls_at_return = 0;
  std::thread stop([&] {
    participant_->SendDeferredVotesNow();
    calls_at_return = enlister_.calls().size();
    stopped.Notify();
  });
  // The stop must wait for the held run; 300 ms is only how long this test
  // watches for it returning too early.
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(300)))
      << "the stop returned while the run still held the vote";
  release.Notify();
  run.join();
  stop.join();
  SetFailpointHook("before-deferred-votes-durable", nullptr);
  EXPECT_EQ(calls_at_return, 1u);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
}

TEST_F(DeferredVoteTest, ABranchEndedBeforeItsVoteLeftSendsNone) {
  ASSERT_TRUE(PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1").ok());
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  RunDue();
  EXPECT_TRUE(enlister_.calls().empty());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(DeferredVoteTest, AnUnansweredDeferredVoteIsLeftForTheResolverToSendAgain) {
  ASSERT_TRUE(PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1").ok());
  RunDue();
  EXPECT_EQ(enlister_.AnswerHeld(absl::UnavailableError("coordinator down")), 1u);
  std::vector<PreparedBranch> prepared = participant_->ListPrepared();
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_TRUE(prepared[0].vote_unsent);
  EXPECT_FALSE(prepared[0].vote_sending);
  ASSERT_TRUE(participant_->SendSignedVote(kTx1));
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}, Call{kTx1, true}));
}

TEST_F(DeferredVoteTest, OnlyAnEarlyPrepareTheClientNamesIsDeferred) {
  // Not named: the vote is reported before the answer, as always.
  absl::StatusOr<ExecuteResult> unnamed =
      Exec(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}, absl::ZeroDuration(),
           /*prepare=*/true);
  ASSERT_TRUE(unnamed.ok()) << unnamed.status();
  EXPECT_FALSE(unnamed->vote_deferred);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}));
  // Named, without prepare: its enlistment goes at once.
  absl::StatusOr<ExecuteResult> write =
      ExecNamed(*participant_, kTx2, {Sql("UPDATE accounts SET balance = 8 WHERE id = 2")});
  ASSERT_TRUE(write.ok()) << write.status();
  EXPECT_FALSE(write->vote_deferred);
  EXPECT_THAT(enlister_.calls(), ElementsAre(Call{kTx1, true}, Call{kTx2, false}));
}

class UncontendedVoteTest : public DeferredVoteTest {
 protected:
  void SetUp() override {
    vote_deferral_ = VoteDeferral::kWhenContended;
    DeferredVoteTest::SetUp();
  }
};

TEST_F(UncontendedVoteTest, WithNoSyncRunningTheVoteIsSignedAsBefore) {
  absl::StatusOr<ExecuteResult> result =
      PrepareEarly(kTx1, "UPDATE accounts SET balance = 7 WHERE id = 1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->vote_deferred);
  EXPECT_FALSE(result->vote_proof.empty());
  RunDue();
  EXPECT_TRUE(enlister_.calls().empty());
}

}  // namespace
}  // namespace txcoord::participant::testing
