#include "coordinator/engine.h"

#include <string>

#include "common/vote_proof.h"
#include "coordinator/engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using testing::BeginWith;
using testing::kT0;
using testing::Only;

std::vector<std::string> Participants(const std::vector<SendPrepare>& sends) {
  std::vector<std::string> names;
  for (const auto& s : sends) names.push_back(s.branch.participant);
  return names;
}

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : engine_(testing::TestEngineOptions()) {}

  std::string BeginWith(const std::vector<std::string>& participants) {
    return testing::BeginWith(engine_, participants);
  }

  Actions Commit(const std::string& txid) {
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, kT0, &out).ok());
    return out;
  }

  Actions Vote(const std::string& txid, const std::string& p, absl::StatusOr<coordinator::Vote> v) {
    Actions out;
    engine_.OnPrepareResult(txid, p, v, kT0, &out);
    return out;
  }

  TxState State(const std::string& txid) {
    auto view = engine_.Describe(txid);
    EXPECT_TRUE(view.ok()) << view.status();
    return view.ok() ? view->state : TxState::kActive;
  }

  Engine engine_;
};

TEST_F(EngineTest, BeginNamesThisCoordinatorAndArmsTheDeadline) {
  Actions out;
  auto a = engine_.Begin(absl::Seconds(10), kT0, &out);
  auto b = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->txid, "c1.7.1");
  EXPECT_EQ(b->txid, "c1.7.2");
  EXPECT_EQ(a->deadline, kT0 + absl::Seconds(10));
  EXPECT_EQ(b->deadline, kT0 + absl::Seconds(30));
  auto timers = Only<ArmTimer>(out);
  ASSERT_EQ(timers.size(), 2u);
  EXPECT_EQ(timers[0].timer.kind, TimerKind::kDeadline);
  EXPECT_EQ(timers[0].at, kT0 + absl::Seconds(10));
}

TEST_F(EngineTest, AllYesLogsCommitBeforeAnsweringThenRunsPhaseTwoAndEnds) {
  std::string txid = BeginWith({"a", "b", "c"});
  Actions out = Commit(txid);
  EXPECT_THAT(Participants(Only<SendPrepare>(out)), ElementsAre("a", "b", "c"));
  EXPECT_EQ(State(txid), TxState::kPreparing);

  EXPECT_THAT(Vote(txid, "a", Vote::kYes), IsEmpty());
  EXPECT_THAT(Vote(txid, "b", Vote::kYes), IsEmpty());
  out = Vote(txid, "c", Vote::kYes);
  // Only the forced COMMIT record: the client hears nothing before it is durable.
  auto logs = Only<LogCommit>(out);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].branches.size(), 3u);
  EXPECT_THAT(Only<Decided>(out), IsEmpty());
  EXPECT_EQ(engine_.QueryOutcome(txid, "a").value(), Outcome::kPending);

  out.clear();
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  auto decided = Only<Decided>(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_TRUE(decided[0].committed);
  EXPECT_EQ(Only<SendCommit>(out).size(), 3u);
  EXPECT_EQ(State(txid), TxState::kCommitting);
  EXPECT_EQ(engine_.QueryOutcome(txid, "b").value(), Outcome::kCommitted);

  for (const char* p : {"a", "b"}) {
    out.clear();
    engine_.OnPhase2Result(txid, p, absl::OkStatus(), kT0, &out);
    EXPECT_THAT(Only<LogEnd>(out), IsEmpty());
  }
  out.clear();
  engine_.OnPhase2Result(txid, "c", absl::OkStatus(), kT0, &out);
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  EXPECT_EQ(State(txid), TxState::kCommitted);
  EXPECT_EQ(engine_.open_transactions(), 0u);
  // A finished transaction still answers its branches correctly.
  EXPECT_EQ(engine_.QueryOutcome(txid, "c").value(), Outcome::kCommitted);
}

TEST_F(EngineTest, OneNoVoteAbortsWithoutLoggingAndTellsTheOthers) {
  std::string txid = BeginWith({"a", "b", "c"});
  Commit(txid);
  Vote(txid, "a", Vote::kYes);
  Actions out = Vote(txid, "b", absl::AbortedError("voted NO: unknown branch"));
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
  auto decided = Only<Decided>(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, ::testing::HasSubstr("b"));
  // a (YES) and c (still voting) must roll back; b forgot itself.
  std::vector<std::string> aborted;
  for (const auto& s : Only<SendAbort>(out)) aborted.push_back(s.branch.participant);
  EXPECT_THAT(aborted, ElementsAre("a", "c"));
  EXPECT_EQ(State(txid), TxState::kAborted);
  // A late YES changes nothing.
  EXPECT_THAT(Vote(txid, "c", Vote::kYes), IsEmpty());
  EXPECT_EQ(engine_.QueryOutcome(txid, "a").value(), Outcome::kAborted);
}

TEST_F(EngineTest, PrepareTimeoutAbortsAndNamesTheSilentBranch) {
  std::string txid = BeginWith({"a", "b"});
  Actions out = Commit(txid);
  auto timers = Only<ArmTimer>(out);
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].timer.kind, TimerKind::kPrepareTimeout);
  EXPECT_EQ(timers[0].at, kT0 + absl::Seconds(5));
  Vote(txid, "a", Vote::kYes);
  out.clear();
  engine_.OnTimer(timers[0].timer, timers[0].at, &out);
  auto decided = Only<Decided>(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, ::testing::HasSubstr("waiting for b"));
}

TEST_F(EngineTest, TimeoutAndLastVoteRacingDecideExactlyOnce) {
  std::string txid = BeginWith({"a", "b"});
  Actions out = Commit(txid);
  TimerId timeout = Only<ArmTimer>(out)[0].timer;
  Vote(txid, "a", Vote::kYes);
  out = Vote(txid, "b", Vote::kYes);  // COMMIT is being logged
  ASSERT_EQ(Only<LogCommit>(out).size(), 1u);
  out.clear();
  engine_.OnTimer(timeout, kT0 + absl::Seconds(6), &out);
  EXPECT_THAT(out, IsEmpty());
  Actions abort_out;
  EXPECT_EQ(engine_.Abort(txid, "client", kT0, &abort_out).code(),
            absl::StatusCode::kFailedPrecondition);
  out.clear();
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
}

TEST_F(EngineTest, DeadlineAbortsAnActiveTransactionAndLaterEnlistIsRefused) {
  std::string txid = BeginWith({"a"});
  Actions out;
  engine_.OnTimer(TimerId{txid, TimerKind::kDeadline, ""}, kT0 + absl::Seconds(31), &out);
  EXPECT_EQ(Only<SendAbort>(out).size(), 1u);
  EXPECT_EQ(State(txid), TxState::kAborted);
  absl::Status late = engine_.Enlist(txid, {"b", "h:1"}, false, kT0, &out);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(late.message()), ::testing::HasSubstr("ABORTED"));
}

TEST_F(EngineTest, ReadOnlyVotesSkipPhaseTwo) {
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  Vote(txid, "a", Vote::kReadOnly);
  Actions out = Vote(txid, "b", Vote::kYes);
  auto logs = Only<LogCommit>(out);
  ASSERT_EQ(logs.size(), 1u);
  ASSERT_EQ(logs[0].branches.size(), 1u);
  EXPECT_EQ(logs[0].branches[0].participant, "b");
  out.clear();
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  auto sends = Only<SendCommit>(out);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].branch.participant, "b");
}

TEST_F(EngineTest, AllReadOnlyCommitsWithoutALogRecord) {
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  Vote(txid, "a", Vote::kReadOnly);
  Actions out = Vote(txid, "b", Vote::kReadOnly);
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
}

TEST_F(EngineTest, NoBranchesCommitsAtOnce) {
  std::string txid = BeginWith({});
  Actions out = Commit(txid);
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
}

TEST_F(EngineTest, OneBranchCommitsInOnePhaseWithoutAPrepareRound) {
  std::string txid = BeginWith({"a"});
  Actions out = Commit(txid);
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
  ASSERT_EQ(Only<LogOnePhase>(out).size(), 1u);
  out.clear();
  engine_.OnOnePhaseLogged(txid, absl::OkStatus(), kT0, &out);
  ASSERT_EQ(Only<SendCommitOnePhase>(out).size(), 1u);
  // The branch decides now: neither the client nor the deadline may abort.
  Actions ignored;
  EXPECT_EQ(engine_.Abort(txid, "client", kT0, &ignored).code(),
            absl::StatusCode::kFailedPrecondition);
  engine_.OnTimer(TimerId{txid, TimerKind::kDeadline, ""}, kT0 + absl::Hours(1), &ignored);
  EXPECT_THAT(ignored, IsEmpty());
  // A lost answer is asked again.
  out.clear();
  engine_.OnOnePhaseResult(txid, "a", absl::UnavailableError("down"), kT0, &out);
  auto retry = Only<ArmTimer>(out);
  ASSERT_EQ(retry.size(), 1u);
  out.clear();
  engine_.OnTimer(retry[0].timer, retry[0].at, &out);
  ASSERT_EQ(Only<SendCommitOnePhase>(out).size(), 1u);
  out.clear();
  engine_.OnOnePhaseResult(txid, "a", true, kT0, &out);
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
  EXPECT_EQ(State(txid), TxState::kCommitted);
}

TEST_F(EngineTest, OnePhaseBranchThatCannotCommitAbortsTheTransaction) {
  std::string txid = BeginWith({"a"});
  Commit(txid);
  Actions out;
  engine_.OnOnePhaseLogged(txid, absl::OkStatus(), kT0, &out);
  engine_.OnOnePhaseResult(txid, "a", false, kT0, &out);
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_FALSE(Only<Decided>(out)[0].committed);
}

TEST_F(EngineTest, EarlyPreparedBranchesAreNotAskedToPrepare) {
  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(begun.ok());
  ASSERT_TRUE(engine_.Enlist(begun->txid, {"a", "h:1"}, /*prepared=*/true, kT0, &out).ok());
  ASSERT_TRUE(engine_.Enlist(begun->txid, {"b", "h:2"}, false, kT0, &out).ok());
  out = Commit(begun->txid);
  EXPECT_THAT(Participants(Only<SendPrepare>(out)), ElementsAre("b"));
  out = Vote(begun->txid, "b", Vote::kYes);
  EXPECT_EQ(Only<LogCommit>(out).size(), 1u);
}

TEST_F(EngineTest, SingleEarlyPreparedBranchGoesStraightToTheLog) {
  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(engine_.Enlist(begun->txid, {"a", "h:1"}, /*prepared=*/true, kT0, &out).ok());
  out = Commit(begun->txid);
  EXPECT_THAT(Only<SendCommitOnePhase>(out), IsEmpty());
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());
  EXPECT_EQ(Only<LogCommit>(out).size(), 1u);
}

TEST_F(EngineTest, PhaseTwoRetriesWithCappedBackoffAndKeepsTheLastError) {
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  Vote(txid, "a", Vote::kYes);
  Vote(txid, "b", Vote::kYes);
  Actions out;
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  absl::Duration last = absl::ZeroDuration();
  for (int attempt = 1; attempt <= 12; ++attempt) {
    out.clear();
    engine_.OnPhase2Result(txid, "a", absl::UnavailableError("connection refused"), kT0, &out);
    auto timers = Only<ArmTimer>(out);
    ASSERT_EQ(timers.size(), 1u);
    last = timers[0].at - kT0;
    EXPECT_LE(last, absl::Seconds(5));
    out.clear();
    engine_.OnTimer(timers[0].timer, timers[0].at, &out);
    ASSERT_EQ(Only<SendCommit>(out).size(), 1u);
  }
  EXPECT_GE(last, absl::Milliseconds(2500));  // reached the cap (with jitter)
  auto view = engine_.Describe(txid);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->branches[0].phase2_attempts, 12u);
  EXPECT_THAT(view->branches[0].last_error, ::testing::HasSubstr("connection refused"));
  EXPECT_EQ(view->state, TxState::kCommitting);
}

TEST_F(EngineTest, SetPolicyChangesTheDefaultsOfWhatComesNext) {
  const std::string before = BeginWith({"a", "b"});
  EnginePolicy policy = engine_.policy();
  EXPECT_EQ(policy.default_tx_timeout, absl::Seconds(30));
  policy.default_tx_timeout = absl::Seconds(2);
  policy.prepare_timeout = absl::Milliseconds(300);
  ASSERT_TRUE(engine_.SetPolicy(policy).ok());

  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(begun.ok());
  EXPECT_EQ(begun->deadline, kT0 + absl::Seconds(2));
  EXPECT_EQ(engine_.Describe(before)->deadline, kT0 + absl::Seconds(30));  // kept its own

  out = Commit(before);
  auto sends = Only<SendPrepare>(out);
  ASSERT_EQ(sends.size(), 2u);
  EXPECT_EQ(sends[0].timeout, absl::Milliseconds(300));
  auto timers = Only<ArmTimer>(out);
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].timer.kind, TimerKind::kPrepareTimeout);
  EXPECT_EQ(timers[0].at, kT0 + absl::Milliseconds(300));
}

TEST_F(EngineTest, SetPolicyLowersThePhaseTwoRetryCap) {
  EnginePolicy policy = engine_.policy();
  policy.phase2_backoff_max = absl::Milliseconds(200);
  ASSERT_TRUE(engine_.SetPolicy(policy).ok());
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  Vote(txid, "a", Vote::kYes);
  Vote(txid, "b", Vote::kYes);
  Actions out;
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  for (int attempt = 1; attempt <= 8; ++attempt) {
    out.clear();
    engine_.OnPhase2Result(txid, "a", absl::UnavailableError("connection refused"), kT0, &out);
    auto timers = Only<ArmTimer>(out);
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_LE(timers[0].at - kT0, absl::Milliseconds(200));
    out.clear();
    engine_.OnTimer(timers[0].timer, timers[0].at, &out);
  }
}

TEST_F(EngineTest, SetPolicyRefusesValuesOutsideTheEnginesBounds) {
  EnginePolicy policy = engine_.policy();
  policy.default_tx_timeout = absl::Hours(2);  // over max_tx_timeout
  EXPECT_EQ(engine_.SetPolicy(policy).code(), absl::StatusCode::kInvalidArgument);
  policy = engine_.policy();
  policy.prepare_timeout = absl::ZeroDuration();
  EXPECT_EQ(engine_.SetPolicy(policy).code(), absl::StatusCode::kInvalidArgument);
  policy = engine_.policy();
  policy.phase2_backoff_max = absl::Milliseconds(1);  // below the first retry's wait
  EXPECT_EQ(engine_.SetPolicy(policy).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.policy().default_tx_timeout, absl::Seconds(30));
  EXPECT_EQ(engine_.policy().prepare_timeout, absl::Seconds(5));
}

TEST_F(EngineTest, FailedCommitLogLeavesTheOutcomeUnknownNotAborted) {
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  Vote(txid, "a", Vote::kYes);
  Vote(txid, "b", Vote::kYes);
  Actions out;
  engine_.OnCommitLogged(txid, absl::InternalError("fdatasync: EIO"), kT0, &out);
  auto decided = Only<Decided>(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Only<SendAbort>(out), IsEmpty());
  EXPECT_THAT(Only<SendCommit>(out), IsEmpty());
  EXPECT_EQ(engine_.QueryOutcome(txid, "a").value(), Outcome::kPending);
}

TEST_F(EngineTest, RecoveredCommitIsRedrivenAndNewTxidsDoNotCollide) {
  Actions out;
  engine_.RecoverCommitted("c1.7.40", {{"a", "h:1"}, {"b", "h:2"}}, kT0, &out);
  EXPECT_EQ(Only<SendCommit>(out).size(), 2u);
  EXPECT_EQ(engine_.QueryOutcome("c1.7.40", "a").value(), Outcome::kCommitted);
  EXPECT_EQ(engine_.LiveCommits().size(), 1u);
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  EXPECT_EQ(begun->txid, "c1.7.41");
}

TEST_F(EngineTest, UnknownTxidOfThisCoordinatorIsPresumedAborted) {
  EXPECT_EQ(engine_.QueryOutcome("c1.3.99", "a").value(), Outcome::kAborted);
}

// An agent may hold a signed vote for a txid a client made up; once its
// question is answered ABORTED, no Begin may hand that txid out.
TEST_F(EngineTest, ATxidAskedAboutBeforeItWasIssuedIsPresumedAbortedAndNeverIssued) {
  Actions out;
  ASSERT_EQ(engine_.Begin(absl::ZeroDuration(), kT0, &out)->txid, "c1.7.1");
  EXPECT_EQ(engine_.QueryOutcome("c1.7.5", "a").value(), Outcome::kAborted);
  EXPECT_EQ(engine_.Stats(kT0).txids_skipped, 4u);  // 2 to 5
  EXPECT_EQ(engine_.Begin(absl::ZeroDuration(), kT0, &out)->txid, "c1.7.6");
  Actions committed;
  ASSERT_TRUE(engine_.Commit("c1.7.5", {{"a", "a:1", 11}}, kT0, &committed).ok());
  auto decided = Only<Decided>(committed);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed) << decided[0].reason;
  EXPECT_THAT(Only<SendPrepare>(committed), IsEmpty());
  EXPECT_THAT(Only<SendCommit>(committed), IsEmpty());
  EXPECT_EQ(engine_.QueryOutcome("c1.7.5", "a").value(), Outcome::kAborted);

  // Farther ahead than any agent signs for (common/vote_proof.h): presumed
  // aborted, and the next txid stays where it was.
  const std::string last = absl::StrCat("c1.7.", 7 + kMaxSignedSequencesAhead - 1);
  const std::string far = absl::StrCat("c1.7.", 7 + kMaxSignedSequencesAhead);
  EXPECT_EQ(engine_.QueryOutcome(far, "a").value(), Outcome::kAborted);
  EXPECT_EQ(engine_.QueryOutcome("c1.7.18446744073709551615", "a").value(), Outcome::kAborted);
  EXPECT_EQ(engine_.Begin(absl::ZeroDuration(), kT0, &out)->txid, "c1.7.7");
  EXPECT_EQ(engine_.Stats(kT0).txids_skipped, 4u);
  // The last one an agent may sign for is skipped.
  EXPECT_EQ(engine_.QueryOutcome(last, "a").value(), Outcome::kAborted);
  EXPECT_EQ(engine_.Begin(absl::ZeroDuration(), kT0, &out)->txid,
            absl::StrCat("c1.7.", 7 + kMaxSignedSequencesAhead));
  EXPECT_EQ(engine_.Stats(kT0).txids_skipped, 4 + kMaxSignedSequencesAhead - 1);
}

TEST_F(EngineTest, ForeignTxidIsRefusedNeverPresumedAborted) {
  auto outcome = engine_.QueryOutcome("c2.1.5", "a");
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(outcome.status().message()), ::testing::HasSubstr("c2"));
  auto future = engine_.QueryOutcome("c1.8.1", "a");  // an epoch from the future
  EXPECT_EQ(future.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, BadRequestsGetClearErrors) {
  Actions out;
  EXPECT_EQ(engine_.Commit("nonsense", kT0, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.Commit("c1.7.999", kT0, &out).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_.Begin(absl::Hours(2), kT0, &out).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string txid = BeginWith({});
  EXPECT_EQ(engine_.Enlist(txid, {"bad name!", "h:1"}, false, kT0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* endpoint : {"", "h", "h:", ":1", "h:0", "h:65536", "h:1x", "h:+1", "a b:1",
                               "h\n:1", "[::1:1", "[zz]:1"}) {
    EXPECT_EQ(engine_.Enlist(txid, {"a", endpoint}, false, kT0, &out).code(),
              absl::StatusCode::kInvalidArgument)
        << endpoint;
  }
  for (const char* endpoint : {"h:1", "10.0.0.5:7171", "[::1]:65535", "orders-2.svc_local:80"}) {
    EXPECT_TRUE(engine_.Enlist(txid, {"a", endpoint}, false, kT0, &out).ok()) << endpoint;
  }
  EXPECT_EQ(engine_.Describe("c1.7.999").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, RepeatedEnlistUnderOneTokenIsANoOp) {
  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(begun.ok());
  const std::string txid = begun->txid;
  EXPECT_TRUE(engine_.Enlist(txid, {"a", "h:1", 41}, false, kT0, &out).ok());
  EXPECT_TRUE(engine_.Enlist(txid, {"a", "h:1", 41}, false, kT0, &out).ok());
  EXPECT_TRUE(engine_.Enlist(txid, {"a", "h:1", 41}, /*prepared=*/true, kT0, &out).ok());
  EXPECT_EQ(State(txid), TxState::kActive);
  ASSERT_EQ(engine_.Describe(txid)->branches.size(), 1u);
}

// Found by the simulator (txsim --seed=2 --split_execute): the agent lost the
// branch it enlisted (restart, idle rollback) and its next Execute started a
// new one; taking that for the old branch committed half of its writes.
TEST_F(EngineTest, EnlistUnderANewTokenAbortsTheTransaction) {
  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(begun.ok());
  const std::string txid = begun->txid;
  ASSERT_TRUE(engine_.Enlist(txid, {"a", "h-a:1", 41}, false, kT0, &out).ok());
  ASSERT_TRUE(engine_.Enlist(txid, {"b", "h-b:1", 7}, false, kT0, &out).ok());
  out.clear();
  absl::Status again = engine_.Enlist(txid, {"a", "h-a:1", 42}, false, kT0, &out);
  EXPECT_EQ(again.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(again.message()), ::testing::HasSubstr("lost its branch"));
  EXPECT_EQ(State(txid), TxState::kAborted);
  EXPECT_EQ(Only<SendAbort>(out).size(), 2u);  // both agents drop what they hold
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_FALSE(Only<Decided>(out)[0].committed);
  // The client's Commit hears ABORTED, not COMMITTED.
  out.clear();
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_FALSE(Only<Decided>(out)[0].committed);
}

// An agent from before tokens enlists with 0; upgrading it restarts it,
// which loses its unprepared branch, and the new agent enlists with a token.
TEST_F(EngineTest, EnlistChangingTheTokenToOrFromZeroAbortsToo) {
  for (const auto& [first, second] : {std::pair<uint64_t, uint64_t>{0, 5}, {5, 0}}) {
    Actions out;
    auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
    ASSERT_TRUE(begun.ok());
    ASSERT_TRUE(engine_.Enlist(begun->txid, {"a", "h-a:1", first}, false, kT0, &out).ok());
    EXPECT_EQ(engine_.Enlist(begun->txid, {"a", "h-a:1", second}, false, kT0, &out).code(),
              absl::StatusCode::kAborted)
        << first << " -> " << second;
    EXPECT_EQ(State(begun->txid), TxState::kAborted);
  }
}

TEST_F(EngineTest, PrepareCarriesTheEnlistedBranchToken) {
  Actions out;
  auto begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(begun.ok());
  ASSERT_TRUE(engine_.Enlist(begun->txid, {"a", "h-a:1", 41}, false, kT0, &out).ok());
  ASSERT_TRUE(engine_.Enlist(begun->txid, {"b", "h-b:1", 9}, false, kT0, &out).ok());
  std::vector<SendPrepare> sends = Only<SendPrepare>(Commit(begun->txid));
  ASSERT_EQ(sends.size(), 2u);
  EXPECT_EQ(sends[0].branch.token + sends[1].branch.token, 50u);
}

TEST_F(EngineTest, CommitIsIdempotent) {
  std::string txid = BeginWith({"a", "b"});
  Commit(txid);
  EXPECT_THAT(Only<SendPrepare>(Commit(txid)), IsEmpty());  // second call just waits
  Vote(txid, "a", Vote::kYes);
  Vote(txid, "b", Vote::kYes);
  Actions out;
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  out = Commit(txid);
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
}

// Found by the simulator (txsim --seed=1 --abort_unknown): a client
// settling a lost Commit reply with Abort must not hear OK for a committed
// transaction the engine no longer holds (the finished cache moved on).
TEST_F(EngineTest, AbortOfAForgottenCommittedTransactionIsRefusedNotPresumedAborted) {
  EngineOptions options = testing::TestEngineOptions();
  options.finished_cache = 1;
  Engine engine(options);
  Actions out;
  auto committed = engine.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(committed.ok());
  ASSERT_TRUE(engine.Commit(committed->txid, kT0, &out).ok());  // no branches: COMMITTED
  auto aborted = engine.Begin(absl::ZeroDuration(), kT0, &out);
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE(engine.Abort(aborted->txid, "client", kT0, &out).ok());  // evicts the first
  EXPECT_TRUE(engine.Abort(aborted->txid, "client", kT0, &out).ok());  // idempotent
  EXPECT_EQ(engine.Abort(committed->txid, "client", kT0, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine.Abort("c1.7.99", "client", kT0, &out).code(), absl::StatusCode::kNotFound)
      << "never issued";
  // An engine not recovered from a log knows nothing of earlier epochs.
  EXPECT_EQ(engine.Abort("c1.6.3", "client", kT0, &out).code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace txcoord::coordinator
