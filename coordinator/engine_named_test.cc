// Engine::Commit with the branches the client names (CommitRequest.branches):
// the enlisted set must match them exactly, and a named branch whose Enlist
// is still on the way is waited for.
#include <string>
#include <vector>

#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using testing::kT0;
using testing::Only;

class NamedCommitTest : public ::testing::Test {
 protected:
  NamedCommitTest() : engine_(testing::TestEngineOptions()) {}

  std::string Begin() {
    Actions out;
    absl::StatusOr<BeginResult> begun = engine_.Begin(absl::ZeroDuration(), kT0, &out);
    EXPECT_TRUE(begun.ok()) << begun.status();
    return begun.ok() ? begun->txid : "";
  }

  // As an agent enlists for an Execute sent with named_in_commit, or
  // (`named_in_commit` false) for one sent without, or as an agent that
  // predates named branches does.
  absl::Status Enlist(const std::string& txid, const std::string& p, uint64_t token, bool prepared,
                      Actions* out, bool named_in_commit = true) {
    return engine_.Enlist(txid, {p, "host-" + p + ":1", token}, prepared, kT0, out,
                          named_in_commit);
  }

  Actions Commit(const std::string& txid, const std::vector<BranchRef>& named) {
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, named, kT0, &out).ok());
    return out;
  }

  static std::vector<Decided> Decisions(const Actions& out) { return Only<Decided>(out); }

  Engine engine_;
};

TEST_F(NamedCommitTest, AllNamedBranchesEnlistedAndPreparedCommitAtOnce) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  ASSERT_TRUE(Enlist(txid, "b", 12, true, &out).ok());
  out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());
  ASSERT_EQ(Only<LogCommit>(out).size(), 1u);
  EXPECT_EQ(Only<LogCommit>(out)[0].branches.size(), 2u);
}

TEST_F(NamedCommitTest, ANamedBranchStillEnlistingIsWaitedForAndItsVoteDecides) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  // Nothing to send to b yet (no endpoint), nothing decided.
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
  EXPECT_THAT(Decisions(out), IsEmpty());
  ASSERT_EQ(Only<ArmTimer>(out).size(), 1u);
  EXPECT_EQ(Only<ArmTimer>(out)[0].timer.kind, TimerKind::kPrepareTimeout);

  out.clear();
  ASSERT_TRUE(Enlist(txid, "b", 12, /*prepared=*/true, &out).ok());
  const std::vector<LogCommit> logged = Only<LogCommit>(out);
  ASSERT_EQ(logged.size(), 1u);
  ASSERT_EQ(logged[0].branches.size(), 2u);
  // The endpoint came with the Enlist: phase 2 can reach b.
  EXPECT_EQ(logged[0].branches[1].endpoint, "host-b:1");
}

TEST_F(NamedCommitTest, AnAwaitedBranchThatEnlistsUnpreparedIsSentPrepare) {
  const std::string txid = Begin();
  Actions out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());
  out.clear();
  ASSERT_TRUE(Enlist(txid, "a", 11, /*prepared=*/false, &out).ok());
  const std::vector<SendPrepare> sent = Only<SendPrepare>(out);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].branch.participant, "a");
  EXPECT_EQ(sent[0].branch.endpoint, "host-a:1");
  // A repeat of the Enlist sends nothing more.
  out.clear();
  ASSERT_TRUE(Enlist(txid, "a", 11, false, &out).ok());
  EXPECT_THAT(Only<SendPrepare>(out), IsEmpty());

  out.clear();
  engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());  // b still awaited
  ASSERT_TRUE(Enlist(txid, "b", 12, true, &out).ok());
  EXPECT_EQ(Only<LogCommit>(out).size(), 1u);
}

TEST_F(NamedCommitTest, ANamedBranchThatNeverEnlistsAbortsAtThePrepareTimeout) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  const std::vector<ArmTimer> timers = Only<ArmTimer>(out);
  ASSERT_EQ(timers.size(), 1u);
  out.clear();
  engine_.OnTimer(timers[0].timer, timers[0].at, &out);
  const std::vector<Decided> decided = Decisions(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, HasSubstr("b (named in the Commit, never enlisted)"));
  // a is told to abort; b has no endpoint to tell.
  std::vector<std::string> told;
  for (const SendAbort& a : Only<SendAbort>(out)) told.push_back(a.branch.participant);
  EXPECT_THAT(told, ElementsAre("a"));
  // b's Enlist arriving now is refused: its agent rolls the branch back.
  out.clear();
  EXPECT_FALSE(Enlist(txid, "b", 12, true, &out).ok());
}

TEST_F(NamedCommitTest, ABranchEnlistedButNotNamedAborts) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  ASSERT_TRUE(Enlist(txid, "b", 12, true, &out).ok());
  out = Commit(txid, {{"a", "", 11}});
  const std::vector<Decided> decided = Decisions(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, HasSubstr("b enlisted a branch that the client's Commit did not"));
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
}

// An agent that predates named branches enlists before answering and
// reports no token, so the client cannot name it: during an upgrade its
// branch commits with the named ones, as under an unnamed Commit.
TEST_F(NamedCommitTest, ABranchEnlistedWithoutTheNamedMarkCommitsUnnamed) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  ASSERT_TRUE(Enlist(txid, "old", 12, false, &out, /*named_in_commit=*/false).ok());
  out = Commit(txid, {{"a", "", 11}});
  EXPECT_THAT(Decisions(out), IsEmpty());
  // The unnamed branch is asked for its vote like any other.
  const std::vector<SendPrepare> prepares = Only<SendPrepare>(out);
  ASSERT_EQ(prepares.size(), 1u);
  EXPECT_EQ(prepares[0].branch.participant, "old");
  out.clear();
  engine_.OnPrepareResult(txid, "old", Vote::kYes, kT0, &out);
  ASSERT_EQ(Only<LogCommit>(out).size(), 1u);
  EXPECT_EQ(Only<LogCommit>(out)[0].branches.size(), 2u);
}

// A branch kept unnamed is not the Commit's to wait for: its Enlist after
// the Commit is refused, as any unnamed branch's is.
TEST_F(NamedCommitTest, AKeptUnnamedBranchCannotEnlistAgainOnceCommitStarted) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  ASSERT_TRUE(Enlist(txid, "old", 12, false, &out, /*named_in_commit=*/false).ok());
  Commit(txid, {{"a", "", 11}});
  out.clear();
  absl::Status again = Enlist(txid, "old", 12, true, &out, /*named_in_commit=*/false);
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_THAT(Only<LogCommit>(out), IsEmpty());
}

TEST_F(NamedCommitTest, DescribeShowsAnAwaitedBranchUntilItEnlists) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  absl::StatusOr<TransactionView> view = engine_.Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->branches.size(), 2u);
  EXPECT_FALSE(view->branches[0].awaited);
  EXPECT_TRUE(view->branches[1].awaited);
  EXPECT_EQ(view->branches[1].ref.endpoint, "");
  out.clear();
  ASSERT_TRUE(Enlist(txid, "b", 12, false, &out).ok());
  view = engine_.Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->branches[1].awaited);
  EXPECT_EQ(view->branches[1].ref.endpoint, "host-b:1");
}

TEST_F(NamedCommitTest, ABranchNamedUnderAnotherTokenAborts) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  out = Commit(txid, {{"a", "", 99}});
  const std::vector<Decided> decided = Decisions(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, HasSubstr("the agent lost the branch the client wrote in"));
}

TEST_F(NamedCommitTest, AnAwaitedBranchEnlistingUnderAnotherTokenAborts) {
  const std::string txid = Begin();
  Actions out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  out.clear();
  const absl::Status refused = Enlist(txid, "b", 13, true, &out);
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted) << refused;
  const std::vector<Decided> decided = Decisions(out);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_FALSE(decided[0].committed);
  EXPECT_THAT(decided[0].reason, HasSubstr("not the one the client's Commit named"));
}

TEST_F(NamedCommitTest, AnUnnamedParticipantCannotJoinOnceCommitStarted) {
  const std::string txid = Begin();
  Actions out = Commit(txid, {{"a", "", 11}});
  out.clear();
  EXPECT_EQ(Enlist(txid, "z", 5, true, &out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Decisions(out), IsEmpty());
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  EXPECT_EQ(Only<LogCommit>(out).size(), 1u);
}

// Without names the Commit takes what enlisted before it, as ever: a
// branch's Enlist after it started is refused, even with a vote.
TEST_F(NamedCommitTest, ACommitWithoutNamesStillRefusesEnlistsOnceStarted) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, false, &out).ok());
  ASSERT_TRUE(Enlist(txid, "b", 12, false, &out).ok());
  out = Commit(txid, {});
  ASSERT_EQ(Only<SendPrepare>(out).size(), 2u);
  out.clear();
  EXPECT_EQ(Enlist(txid, "a", 11, /*prepared=*/true, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(out, IsEmpty());
  absl::StatusOr<TransactionView> view = engine_.Describe(txid);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->branches[0].vote, Vote::kUnknown);
}

TEST_F(NamedCommitTest, ASingleAwaitedBranchIsPreparedNotCommittedInOnePhase) {
  const std::string txid = Begin();
  Actions out = Commit(txid, {{"a", "", 11}});
  EXPECT_THAT(Only<SendCommitOnePhase>(out), IsEmpty());
  out.clear();
  ASSERT_TRUE(Enlist(txid, "a", 11, false, &out).ok());
  EXPECT_EQ(Only<SendPrepare>(out).size(), 1u);
  EXPECT_THAT(Only<SendCommitOnePhase>(out), IsEmpty());
}

TEST_F(NamedCommitTest, BadNamesAreRefusedAndChangeNothing) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  out.clear();
  EXPECT_EQ(engine_.Commit(txid, {{"a", "", 11}, {"a", "", 11}}, kT0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.Commit(txid, {{"a", "", 0}}, kT0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.Commit(txid, {{"a b", "", 11}}, kT0, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out, IsEmpty());
  absl::StatusOr<TransactionView> view = engine_.Describe(txid);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state, TxState::kActive);
}

TEST_F(NamedCommitTest, ARetriedCommitAfterTheDecisionAnswersIt) {
  const std::string txid = Begin();
  Actions out;
  ASSERT_TRUE(Enlist(txid, "a", 11, true, &out).ok());
  ASSERT_TRUE(Enlist(txid, "b", 12, true, &out).ok());
  out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  ASSERT_EQ(Only<LogCommit>(out).size(), 1u);
  out.clear();
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  ASSERT_EQ(Decisions(out).size(), 1u);
  EXPECT_TRUE(Decisions(out)[0].committed);
  // The client's answer was lost: it sends the same Commit again.
  out = Commit(txid, {{"a", "", 11}, {"b", "", 12}});
  ASSERT_EQ(Decisions(out).size(), 1u);
  EXPECT_TRUE(Decisions(out)[0].committed);
}

}  // namespace
}  // namespace txcoord::coordinator
