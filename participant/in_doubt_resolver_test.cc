// The in-doubt resolver on a FakeScheduler: when it asks, what it does with
// the answers, and what it remembers.
#include "participant/in_doubt_resolver.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant {
namespace {

using testing::FakeScheduler;
using testing::Sql;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

class InDoubtResolverTest : public testing::ParticipantTest {
 protected:
  void SetUp() override {
    options_.clock = &scheduler_;
    ParticipantTest::SetUp();
    resolver_options_.min_age = absl::Seconds(2);
    resolver_options_.poll_interval = absl::Milliseconds(10);
    resolver_options_.backoff_initial = absl::Milliseconds(200);
    resolver_options_.backoff_max = absl::Seconds(1);
  }
  void TearDown() override {
    resolver_.reset();
    ParticipantTest::TearDown();
  }

  // Questions are kept until answered with Answer (or answered at once
  // with `auto_answer`).
  void StartResolver() {
    // What was prepared so far was prepared before the start.
    scheduler_.Advance(absl::Milliseconds(1));
    resolver_ = std::make_unique<InDoubtResolver>(
        participant_.get(), &scheduler_,
        [this](const std::string& txid, OutcomeCallback done) {
          asked_.push_back({txid, scheduler_.Now()});
          if (auto_answer_.has_value()) {
            done(*auto_answer_);
          } else {
            waiting_.push_back(std::move(done));
          }
        },
        resolver_options_);
    resolver_->Start();
  }
  void Answer(absl::StatusOr<RemoteOutcome> outcome) {
    ASSERT_FALSE(waiting_.empty());
    OutcomeCallback done = std::move(waiting_.front());
    waiting_.erase(waiting_.begin());
    done(std::move(outcome));
  }
  void PrepareBranch(const std::string& txid, int account) {
    ASSERT_TRUE(Exec(txid, {Sql("UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                                {static_cast<int64_t>(account)})})
                    .ok());
    ASSERT_EQ(participant_->Prepare(txid).value(), Vote::kYes);
  }
  // An early prepare whose vote is signed into the answer (docs/protocol.md,
  // "Signed votes"); Enlists are held from now on.
  absl::StatusOr<ExecuteResult> SignedPrepare(const std::string& txid) {
    enlister_.HoldAsync();
    enlister_.GiveVoteKey("key-of-svc", "svc.example:7001");
    ExecuteOptions signed_prepare;
    signed_prepare.prepare = true;
    signed_prepare.named_in_commit = true;
    signed_prepare.carries_vote_proof = true;
    return participant_->Execute(txid, {Sql("UPDATE accounts SET balance = 3 WHERE id = 1")},
                                 signed_prepare);
  }
  // The branch as ListPrepared shows it (what `txctl in-doubt` lists).
  std::optional<PreparedBranch> Listed(const std::string& txid) {
    for (PreparedBranch& branch : participant_->ListPrepared()) {
      if (branch.txid == txid) return std::move(branch);
    }
    return std::nullopt;
  }
  bool Prepared(const std::string& txid) { return Listed(txid).has_value(); }
  // A signed early prepare of kTx1 left without an outcome until the
  // resolver sends its vote late; that Enlist is held.
  void SignedVoteSentLate() {
    StartResolver();
    ASSERT_TRUE(SignedPrepare(kTx1).ok());
    scheduler_.Advance(resolver_options_.min_age);
    ASSERT_EQ(enlister_.calls().size(), 1u);
  }

  // `txid` is still prepared, and the next scan asks about it, well before
  // min_age from `since`.
  void ExpectAskedBeforeMinAge(const std::string& txid, absl::Time since) {
    ASSERT_TRUE(Prepared(txid));
    scheduler_.Advance(resolver_options_.poll_interval);
    ASSERT_EQ(asked_.size(), 1u);
    EXPECT_EQ(asked_[0].txid, txid);
    EXPECT_LT(asked_[0].at - since, resolver_options_.min_age);
  }

  struct Ask {
    std::string txid;
    absl::Time at;
  };
  FakeScheduler scheduler_;
  ResolverOptions resolver_options_;
  std::unique_ptr<InDoubtResolver> resolver_;
  std::vector<Ask> asked_;
  std::vector<OutcomeCallback> waiting_;
  std::optional<absl::StatusOr<RemoteOutcome>> auto_answer_;
};

TEST_F(InDoubtResolverTest, BranchPreparedBeforeStartIsAskedAtOnce) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].txid, kTx1);
}

TEST_F(InDoubtResolverTest, FreshBranchIsLeftToTheCoordinatorForMinAge) {
  StartResolver();
  const absl::Time prepared_at = scheduler_.Now();
  PrepareBranch(kTx1, 1);
  scheduler_.Advance(absl::Milliseconds(1990));
  EXPECT_TRUE(asked_.empty());
  scheduler_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].at, prepared_at + resolver_options_.min_age);
}

// After a coordinator restart its new run refuses the vote of an early
// prepare on a txid it never issued: the branch's rows are locked until its
// outcome is known, so the resolver asks at once, not after min_age.
TEST_F(InDoubtResolverTest, BranchWhoseVoteTheCoordinatorRefusedIsAskedAtOnce) {
  StartResolver();
  const absl::Time refused_at = scheduler_.Now();
  enlister_.FailNext(absl::NotFoundError("transaction c1.1.1 is unknown"));
  absl::StatusOr<ExecuteResult> refused =
      Exec(kTx1, {Sql("UPDATE accounts SET balance = balance + 1 WHERE id = 1")},
           absl::ZeroDuration(), /*prepare=*/true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted) << refused.status();
  ExpectAskedBeforeMinAge(kTx1, refused_at);
}

// The same when the branch was named in Commit: its vote went out
// asynchronously and the refusal comes after the Execute answered.
TEST_F(InDoubtResolverTest, NamedBranchWhoseVoteTheCoordinatorRefusedIsAskedAtOnce) {
  StartResolver();
  const absl::Time refused_at = scheduler_.Now();
  enlister_.HoldAsync();
  ExecuteOptions named;
  named.prepare = true;
  named.named_in_commit = true;
  absl::StatusOr<ExecuteResult> voted = participant_->Execute(
      kTx1, {Sql("UPDATE accounts SET balance = balance + 1 WHERE id = 1")}, std::move(named));
  ASSERT_TRUE(voted.ok()) << voted.status();
  ASSERT_EQ(enlister_.AnswerHeld(absl::NotFoundError("transaction c1.1.1 is unknown")), 1u);
  ExpectAskedBeforeMinAge(kTx1, refused_at);
}

// A signed vote (docs/protocol.md, "Signed votes") reached no coordinator:
// with no outcome after min_age, the vote is sent by Enlist first, so that
// a slow Commit still finds the transaction open, and asked about after.
TEST_F(InDoubtResolverTest, ASignedVoteWithNoOutcomeIsSentByEnlistAndAskedAboutOnceAnswered) {
  StartResolver();
  absl::StatusOr<ExecuteResult> result = SignedPrepare(kTx1);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(result->vote_proof.empty());
  EXPECT_TRUE(enlister_.calls().empty());
  scheduler_.Advance(resolver_options_.min_age - absl::Milliseconds(20));
  EXPECT_TRUE(enlister_.calls().empty());
  EXPECT_TRUE(asked_.empty());
  ASSERT_TRUE(Listed(kTx1).has_value());
  EXPECT_TRUE(Listed(kTx1)->vote_unsent);
  EXPECT_FALSE(Listed(kTx1)->vote_sending);
  scheduler_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(enlister_.calls().size(), 1u);
  EXPECT_EQ(enlister_.calls()[0].txid, kTx1);
  EXPECT_TRUE(enlister_.calls()[0].prepared);
  EXPECT_EQ(enlister_.calls()[0].token, result->branch_token);
  EXPECT_TRUE(asked_.empty());
  ASSERT_TRUE(Listed(kTx1).has_value());
  EXPECT_FALSE(Listed(kTx1)->vote_unsent);
  EXPECT_TRUE(Listed(kTx1)->vote_sending);
  // While the Enlist is on its way, the branch is neither asked about (the
  // question could overtake it) nor sent again, however long it takes.
  scheduler_.Advance(resolver_options_.backoff_max * 2);
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(enlister_.calls().size(), 1u);
  // Once the coordinator took it, the branch is asked about.
  ASSERT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  EXPECT_FALSE(Listed(kTx1)->vote_sending);
  scheduler_.Advance(resolver_options_.poll_interval);
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].txid, kTx1);
  scheduler_.Advance(resolver_options_.poll_interval * 5);
  EXPECT_EQ(enlister_.calls().size(), 1u);  // sent once
  EXPECT_TRUE(Prepared(kTx1));
}

// The late Enlist of a signed vote failed on the way (the coordinator was
// out of reach): it is sent again after a backoff rather than the branch
// asked about, since for a reserved txid not begun yet the question would
// use the txid up while its Commit may still come.
TEST_F(InDoubtResolverTest, ASignedVoteWhoseLateEnlistDidNotGetThroughIsSentAgain) {
  ASSERT_NO_FATAL_FAILURE(SignedVoteSentLate());
  ASSERT_EQ(enlister_.AnswerHeld(absl::UnavailableError("connection refused")), 1u);
  scheduler_.Advance(resolver_options_.backoff_initial);
  ASSERT_EQ(enlister_.calls().size(), 2u);  // sent again
  EXPECT_TRUE(asked_.empty());
  // An overloaded coordinator did not process it either.
  ASSERT_EQ(enlister_.AnswerHeld(absl::ResourceExhaustedError("too many calls")), 1u);
  scheduler_.Advance(2 * resolver_options_.backoff_initial);
  ASSERT_EQ(enlister_.calls().size(), 3u);
  EXPECT_TRUE(asked_.empty());
  ASSERT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  scheduler_.Advance(4 * resolver_options_.backoff_initial);
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(enlister_.calls().size(), 3u);
}

// A late signed vote that the coordinator refused (the transaction is over)
// is not sent again: the branch is asked about, once the backoff that
// began with the send is over.
TEST_F(InDoubtResolverTest, ASignedVoteWhoseLateEnlistWasRefusedIsAskedAbout) {
  ASSERT_NO_FATAL_FAILURE(SignedVoteSentLate());
  ASSERT_EQ(enlister_.AnswerHeld(absl::FailedPreconditionError("transaction c1.1.1 is over")), 1u);
  scheduler_.Advance(resolver_options_.backoff_initial);
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].txid, kTx1);
  EXPECT_EQ(enlister_.calls().size(), 1u);
}

// The branch's own Enlist from its first write, answered while the late
// send of its signed vote is still on its way, does not stand for that
// send: the resolver still waits for the send's answer before it asks.
TEST_F(InDoubtResolverTest, AnEarlierEnlistAnsweredLateDoesNotReleaseTheLateSignedVote) {
  StartResolver();
  enlister_.HoldAsync();
  enlister_.GiveVoteKey("key-of-svc", "svc.example:7001");
  ExecuteOptions first_write;
  first_write.named_in_commit = true;
  first_write.carries_vote_proof = true;
  ASSERT_TRUE(
      participant_
          ->Execute(kTx1, {Sql("UPDATE accounts SET balance = 2 WHERE id = 1")}, first_write)
          .ok());
  ASSERT_EQ(enlister_.calls().size(), 1u);  // the branch alone
  EXPECT_FALSE(enlister_.calls()[0].prepared);
  absl::StatusOr<ExecuteResult> voted = SignedPrepare(kTx1);
  ASSERT_TRUE(voted.ok()) << voted.status();
  ASSERT_FALSE(voted->vote_proof.empty());
  scheduler_.Advance(resolver_options_.min_age);
  ASSERT_EQ(enlister_.calls().size(), 2u);  // the late send
  EXPECT_TRUE(enlister_.calls()[1].prepared);
  ASSERT_TRUE(enlister_.AnswerOldestHeld(absl::DeadlineExceededError("first write's Enlist")));
  scheduler_.Advance(resolver_options_.backoff_max * 2);
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(enlister_.calls().size(), 2u);
  ASSERT_TRUE(enlister_.AnswerOldestHeld(absl::OkStatus()));
  scheduler_.Advance(resolver_options_.poll_interval);
  ASSERT_EQ(asked_.size(), 1u);
}

TEST_F(InDoubtResolverTest, CommittedAnswerCommitsTheBranch) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(RemoteOutcome::kCommitted);
  EXPECT_TRUE(Prepared(kTx1));  // applied on the scheduler, not inside `done`
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_FALSE(Prepared(kTx1));
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "101");
  EXPECT_EQ(resolver_->tracked(), 0u);
}

TEST_F(InDoubtResolverTest, AbortedAnswerAbortsTheBranch) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(RemoteOutcome::kAborted);
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_FALSE(Prepared(kTx1));
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
  EXPECT_EQ(resolver_->tracked(), 0u);
}

TEST_F(InDoubtResolverTest, UnsettledAnswersBackOffExponentiallyPerTxid) {
  PrepareBranch(kTx1, 1);
  auto_answer_ = absl::UnavailableError("coordinator down");  // inside the call
  StartResolver();
  const absl::Time start = scheduler_.Now();
  scheduler_.Advance(absl::Milliseconds(4500));
  std::vector<absl::Duration> at;
  for (const Ask& ask : asked_) at.push_back(ask.at - start);
  const std::vector<absl::Duration> expected = {
      absl::ZeroDuration(),     absl::Milliseconds(200),  absl::Milliseconds(600),
      absl::Milliseconds(1400), absl::Milliseconds(2400), absl::Milliseconds(3400),
      absl::Milliseconds(4400)};  // waits 200, 400, 800, then backoff_max
  EXPECT_EQ(at, expected);
  EXPECT_TRUE(Prepared(kTx1));
}

TEST_F(InDoubtResolverTest, PendingAnswerIsAskedAgainLater) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(RemoteOutcome::kPending);
  scheduler_.Advance(absl::Milliseconds(190));
  EXPECT_EQ(asked_.size(), 1u);
  scheduler_.Advance(absl::Milliseconds(10));
  EXPECT_EQ(asked_.size(), 2u);
  EXPECT_TRUE(Prepared(kTx1));
}

TEST_F(InDoubtResolverTest, QueryInFlightIsNotSentAgain) {
  PrepareBranch(kTx1, 1);
  PrepareBranch(kTx2, 2);
  StartResolver();
  scheduler_.Advance(absl::Seconds(30));
  ASSERT_EQ(asked_.size(), 2u);  // one per txid
  EXPECT_NE(asked_[0].txid, asked_[1].txid);
}

TEST_F(InDoubtResolverTest, ForgetsTxidsTheCoordinatorSettledItself) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(RemoteOutcome::kPending);
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(resolver_->tracked(), 1u);
  ASSERT_TRUE(participant_->Commit(kTx1).ok());  // its phase 2 arrived
  scheduler_.Advance(absl::Milliseconds(10));
  EXPECT_EQ(resolver_->tracked(), 0u);
}

TEST_F(InDoubtResolverTest, HeuristicDecisionIsAskedAboutUntilConfirmed) {
  PrepareBranch(kTx1, 1);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kCommitted, "ops").ok());
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(absl::UnavailableError("coordinator down"));
  scheduler_.Advance(absl::Milliseconds(200));
  Answer(RemoteOutcome::kCommitted);
  scheduler_.Advance(absl::ZeroDuration());
  absl::StatusOr<std::vector<HeuristicDecision>> unsettled = participant_->ListHeuristics(true);
  ASSERT_TRUE(unsettled.ok()) << unsettled.status();
  EXPECT_TRUE(unsettled->empty());
  absl::StatusOr<std::vector<HeuristicDecision>> all = participant_->ListHeuristics(false);
  ASSERT_TRUE(all.ok() && all->size() == 1u);
  EXPECT_FALSE(all->front().mixed);
  scheduler_.Advance(absl::Seconds(10));
  EXPECT_EQ(asked_.size(), 2u);  // confirmed: never asked again
  EXPECT_EQ(resolver_->tracked(), 0u);
}

TEST_F(InDoubtResolverTest, ContradictingOutcomeFlagsTheDecisionHeuristicMixed) {
  PrepareBranch(kTx1, 1);
  ASSERT_TRUE(participant_->ResolveHeuristically(kTx1, Outcome::kAborted, "ops").ok());
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  Answer(RemoteOutcome::kCommitted);
  scheduler_.Advance(absl::ZeroDuration());
  absl::StatusOr<std::vector<HeuristicDecision>> all = participant_->ListHeuristics(false);
  ASSERT_TRUE(all.ok() && all->size() == 1u);
  EXPECT_TRUE(all->front().mixed);
  EXPECT_EQ(resolver_->tracked(), 0u);
}

TEST_F(InDoubtResolverTest, AnswerArrivingAfterTheResolverIsGoneIsDropped) {
  PrepareBranch(kTx1, 1);
  StartResolver();
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_EQ(waiting_.size(), 1u);
  resolver_.reset();
  EXPECT_EQ(scheduler_.pending(), 0u);  // its next scan was cancelled
  Answer(RemoteOutcome::kCommitted);
  EXPECT_EQ(scheduler_.pending(), 0u);
  scheduler_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Prepared(kTx1));
}

// An Abort the coordinator could not deliver (the agent was briefly out of
// reach) leaves an unprepared branch holding its rows. Once idle for
// idle_ask_after, the resolver asks; ABORTED rolls it back and frees them.
TEST_F(InDoubtResolverTest, AnIdleEnlistedBranchWhoseTransactionAbortedIsRolledBack) {
  resolver_options_.idle_ask_after = absl::Seconds(5);
  StartResolver();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}).ok());
  ASSERT_EQ(enlister_.calls().size(), 1u);  // the coordinator took its Enlist
  const absl::Time used = scheduler_.Now();
  scheduler_.Advance(absl::Milliseconds(4990));
  EXPECT_TRUE(asked_.empty());
  scheduler_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].txid, kTx1);
  EXPECT_GE(asked_[0].at - used, absl::Seconds(5));
  EXPECT_EQ(participant_->LockCount(), 1u);
  Answer(RemoteOutcome::kAborted);
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_EQ(participant_->LockCount(), 0u);
  // Its row is free: another transaction writes it at once.
  EXPECT_TRUE(Exec(kTx2, {Sql("UPDATE accounts SET balance = 8 WHERE id = 1")}).ok());
  EXPECT_EQ(resolver_->tracked(), 0u);
}

// A transaction still open (a slow client) answers PENDING: the branch
// stays, asked again after a backoff, and lives on once it is used again.
TEST_F(InDoubtResolverTest, AnIdleBranchOfAnOpenTransactionStays) {
  resolver_options_.idle_ask_after = absl::Seconds(5);
  StartResolver();
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}).ok());
  scheduler_.Advance(absl::Milliseconds(5010));
  ASSERT_EQ(asked_.size(), 1u);
  Answer(RemoteOutcome::kPending);
  // Asked again after idle_ask_after, not the prepared branches' backoff.
  scheduler_.Advance(absl::Milliseconds(4990));
  EXPECT_EQ(asked_.size(), 1u);
  scheduler_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(asked_.size(), 2u);
  Answer(RemoteOutcome::kPending);
  EXPECT_EQ(participant_->BranchCount(), 1u);
  // Used again: no longer idle, and no longer asked about.
  ASSERT_TRUE(Exec(kTx1, {Sql("UPDATE accounts SET balance = 9 WHERE id = 1")}).ok());
  scheduler_.Advance(absl::Seconds(4));
  EXPECT_EQ(asked_.size(), 2u);
  EXPECT_EQ(resolver_->tracked(), 0u);
  EXPECT_EQ(participant_->BranchCount(), 1u);
}

// A branch whose Enlist the coordinator has not taken (a named branch's
// Enlist still on its way) is never asked about: for a reserved txid, the
// question would use the txid up before the transaction begins.
TEST_F(InDoubtResolverTest, AnIdleBranchWhoseEnlistWasNotTakenIsNotAskedAbout) {
  resolver_options_.idle_ask_after = absl::Seconds(5);
  StartResolver();
  enlister_.HoldAsync();
  ExecuteOptions named;
  named.named_in_commit = true;
  ASSERT_TRUE(
      participant_->Execute(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}, named)
          .ok());
  scheduler_.Advance(absl::Seconds(6));
  EXPECT_TRUE(asked_.empty());
  ASSERT_EQ(enlister_.AnswerHeld(absl::OkStatus()), 1u);
  scheduler_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].txid, kTx1);
}

// Questions about idle branches are many where questions about prepared
// ones are few: at most max_idle_asking are in flight, and the rest wait.
TEST_F(InDoubtResolverTest, AtMostMaxIdleAskingIdleBranchesAreAskedAboutAtOnce) {
  resolver_options_.idle_ask_after = absl::Seconds(5);
  resolver_options_.max_idle_asking = 2;
  StartResolver();
  ASSERT_TRUE(Exec("c1.1.1", {Sql("UPDATE accounts SET balance = 7 WHERE id = 1")}).ok());
  ASSERT_TRUE(Exec("c1.1.2", {Sql("UPDATE accounts SET balance = 7 WHERE id = 2")}).ok());
  ASSERT_TRUE(Exec("c1.1.3", {Sql("INSERT INTO accounts VALUES (3, 'carol', 10)")}).ok());
  scheduler_.Advance(absl::Seconds(6));
  ASSERT_EQ(asked_.size(), 2u);
  Answer(RemoteOutcome::kAborted);
  scheduler_.Advance(resolver_options_.poll_interval);
  ASSERT_EQ(asked_.size(), 3u);
  EXPECT_EQ(asked_[2].txid, "c1.1.3");
  Answer(RemoteOutcome::kAborted);
  Answer(RemoteOutcome::kAborted);
  scheduler_.Advance(resolver_options_.poll_interval);
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

}  // namespace
}  // namespace txcoord::participant
