// The engine's operator requests: listing, retry now, forced abort, marking
// a branch repaired by hand, and how a HEURISTIC_MIXED answer is handled.
#include <string>
#include <vector>

#include "common/heuristic.h"
#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using testing::BeginWith;
using testing::kT0;
using testing::Only;

std::vector<std::string> Txids(const ListPage& page) {
  std::vector<std::string> txids;
  for (const TransactionView& view : page.transactions) txids.push_back(view.txid);
  return txids;
}

class EngineAdminTest : public ::testing::Test {
 protected:
  EngineAdminTest() : engine_(MakeOptions()) {}

  static EngineOptions MakeOptions() {
    EngineOptions options;
    options.cluster_id = "c1";
    options.epoch = 7;
    return options;
  }

  std::string BeginWith(const std::vector<std::string>& participants, absl::Time at = kT0) {
    return testing::BeginWith(engine_, participants, at);
  }

  // A transaction whose COMMIT is durable and whose phase 2 was sent.
  std::string Committing(std::vector<std::string> participants) {
    std::string txid = BeginWith(participants);
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, kT0, &out).ok());
    for (const auto& p : participants) engine_.OnPrepareResult(txid, p, Vote::kYes, kT0, &out);
    engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
    return txid;
  }

  // Fails phase 2 at `p` once; returns the retry timer it armed.
  ArmTimer FailPhase2(const std::string& txid, const std::string& p) {
    Actions out;
    engine_.OnPhase2Result(txid, p, absl::UnavailableError("connection refused"), kT0, &out);
    auto timers = Only<ArmTimer>(out);
    EXPECT_EQ(timers.size(), 1u);
    return timers.empty() ? ArmTimer{} : timers[0];
  }

  // An operator's mark-done, up to the one MARK_DONE record it asks for.
  LogMarkDone MarkDoneRequested(const std::string& txid, const std::string& p) {
    Actions out;
    EXPECT_TRUE(engine_.MarkBranchDone(txid, p, "", kT0, &out).ok());
    std::vector<LogMarkDone> logged = Only<LogMarkDone>(out);
    EXPECT_EQ(logged.size(), 1u);
    return logged.empty() ? LogMarkDone{} : logged[0];
  }

  // An operator's mark-done, its MARK_DONE record durable: every action.
  Actions MarkDone(const std::string& txid, const std::string& p, const std::string& note = "") {
    Actions out;
    EXPECT_TRUE(engine_.MarkBranchDone(txid, p, note, kT0, &out).ok());
    for (const LogMarkDone& mark : Only<LogMarkDone>(out)) {
      engine_.OnMarkDoneLogged(mark, absl::OkStatus(), kT0, &out);
    }
    return out;
  }

  TransactionView View(const std::string& txid) {
    auto view = engine_.Describe(txid);
    EXPECT_TRUE(view.ok()) << view.status();
    return view.ok() ? *view : TransactionView{};
  }

  Engine engine_;
};

TEST_F(EngineAdminTest, ListFiltersByStateAgeAndParticipantOldestFirst) {
  std::string old_active = BeginWith({"a"}, kT0 - absl::Minutes(10));
  std::string committing = Committing({"a", "b"});
  std::string young = BeginWith({"c"}, kT0);
  ListFilter filter;
  EXPECT_THAT(Txids(engine_.List(filter, kT0).value()), ElementsAre(old_active, committing, young));

  filter.states = {TxState::kCommitting};
  EXPECT_THAT(Txids(engine_.List(filter, kT0).value()), ElementsAre(committing));

  filter = ListFilter();
  filter.min_age = absl::Minutes(5);
  EXPECT_THAT(Txids(engine_.List(filter, kT0).value()), ElementsAre(old_active));

  filter = ListFilter();
  filter.participant = "b";
  EXPECT_THAT(Txids(engine_.List(filter, kT0).value()), ElementsAre(committing));
}

TEST_F(EngineAdminTest, ListPagesWithoutRepeatsOrGaps) {
  std::vector<std::string> all;
  for (int i = 0; i < 7; ++i) all.push_back(BeginWith({}));
  ListFilter filter;
  filter.page_size = 3;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<ListPage> page = engine_.List(filter, kT0);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->transactions.size(), 3u);
    for (const std::string& txid : Txids(*page)) seen.push_back(txid);
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  EXPECT_EQ(seen, all);
}

TEST_F(EngineAdminTest, ListRefusesAMalformedPageToken) {
  ListFilter filter;
  filter.page_token = "not a token";
  EXPECT_EQ(engine_.List(filter, kT0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineAdminTest, ListIncludesFinishedOnlyWhenAsked) {
  std::string txid = BeginWith({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Abort(txid, "client", kT0, &out).ok());
  EXPECT_THAT(Txids(engine_.List(ListFilter(), kT0).value()), IsEmpty());
  ListFilter filter;
  filter.include_finished = true;
  filter.states = {TxState::kAborted};
  EXPECT_THAT(Txids(engine_.List(filter, kT0).value()), ElementsAre(txid));
}

TEST_F(EngineAdminTest, RetryResendsNowWithBackoffResetAndRetiresThePendingTimer) {
  std::string txid = Committing({"a", "b"});
  Actions ack;
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &ack);
  ArmTimer pending;
  for (int i = 0; i < 6; ++i) {
    pending = FailPhase2(txid, "a");
    Actions resent;
    engine_.OnTimer(pending.timer, pending.at, &resent);
  }
  pending = FailPhase2(txid, "a");
  EXPECT_GE(pending.at - kT0, absl::Seconds(1));  // deep into the backoff

  Actions out;
  absl::StatusOr<size_t> resent = engine_.RetryPhase2(txid, kT0, &out);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(*resent, 1u);  // b already acknowledged
  auto sends = Only<SendCommit>(out);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].branch.participant, "a");

  // The old timer firing now must not start a second chain of retries.
  out.clear();
  engine_.OnTimer(pending.timer, pending.at, &out);
  EXPECT_THAT(Only<SendCommit>(out), IsEmpty());

  // The next failure starts again from the first backoff step.
  ArmTimer next = FailPhase2(txid, "a");
  EXPECT_LE(next.at - kT0, absl::Milliseconds(50));
  out.clear();
  engine_.OnTimer(next.timer, next.at, &out);
  EXPECT_EQ(Only<SendCommit>(out).size(), 1u);
  EXPECT_EQ(View(txid).branches[0].phase2_attempts, 8u);  // history is kept
}

TEST_F(EngineAdminTest, RetryIsRefusedBeforeTheDecisionAndAfterTheEnd) {
  std::string active = BeginWith({"a", "b"});
  Actions out;
  absl::StatusOr<size_t> retried = engine_.RetryPhase2(active, kT0, &out);
  EXPECT_EQ(retried.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(retried.status().message()), HasSubstr("ACTIVE"));

  std::string done = Committing({"a", "b"});
  engine_.OnPhase2Result(done, "a", absl::OkStatus(), kT0, &out);
  engine_.OnPhase2Result(done, "b", absl::OkStatus(), kT0, &out);
  EXPECT_EQ(engine_.RetryPhase2(done, kT0, &out).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_.RetryPhase2("c1.7.999", kT0, &out).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_.RetryPhase2("other.1.1", kT0, &out).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineAdminTest, RetryResendsAStuckOnePhaseCommit) {
  std::string txid = BeginWith({"a"});
  Actions out;
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  EXPECT_EQ(engine_.RetryPhase2(txid, kT0, &out).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "the branch must not be asked before its ONE_PHASE record is durable";
  engine_.OnOnePhaseLogged(txid, absl::OkStatus(), kT0, &out);
  out.clear();
  engine_.OnOnePhaseResult(txid, "a", absl::UnavailableError("down"), kT0, &out);
  ASSERT_EQ(Only<ArmTimer>(out).size(), 1u);
  ArmTimer pending = Only<ArmTimer>(out)[0];
  out.clear();
  ASSERT_EQ(engine_.RetryPhase2(txid, kT0, &out).value(), 1u);
  EXPECT_EQ(Only<SendCommitOnePhase>(out).size(), 1u);
  out.clear();
  engine_.OnTimer(pending.timer, pending.at, &out);
  EXPECT_THAT(Only<SendCommitOnePhase>(out), IsEmpty());
}

TEST_F(EngineAdminTest, ForceAbortAbortsAnUndecidedTransactionWithTheOperatorsReason) {
  std::string txid = BeginWith({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
  out.clear();
  ASSERT_TRUE(engine_.ForceAbort(txid, "operator: stuck in prepare", kT0, &out).ok());
  EXPECT_EQ(Only<SendAbort>(out).size(), 2u);
  ASSERT_EQ(Only<Decided>(out).size(), 1u);  // a waiting client hears it
  EXPECT_FALSE(Only<Decided>(out)[0].committed);
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kAborted);
  EXPECT_THAT(view.reason, HasSubstr("operator"));
  EXPECT_TRUE(engine_.ForceAbort(txid, "again", kT0, &out).ok());  // idempotent
}

TEST_F(EngineAdminTest, ForceAbortIsRefusedOnceCommitIsLoggedOrBeingLogged) {
  std::string txid = BeginWith({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
  engine_.OnPrepareResult(txid, "b", Vote::kYes, kT0, &out);  // LogCommit issued
  absl::Status refused = engine_.ForceAbort(txid, "x", kT0, &out);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("COMMIT"));
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  EXPECT_EQ(engine_.ForceAbort(txid, "x", kT0, &out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(View(txid).state, TxState::kCommitting);
  EXPECT_EQ(engine_.ForceAbort("c1.7.999", "x", kT0, &out).code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineAdminTest, MarkBranchDoneEndsTheTransactionWhenTheLastBranchIsSettled) {
  std::string txid = Committing({"a", "b"});
  Actions out;
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &out);
  EXPECT_THAT(Only<LogEnd>(out), IsEmpty());
  ArmTimer pending = FailPhase2(txid, "a");

  out = MarkDone(txid, "a");
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kCommitted);
  ASSERT_EQ(view.branches.size(), 2u);
  EXPECT_TRUE(view.branches[0].heuristic);   // a: settled by hand
  EXPECT_FALSE(view.branches[1].heuristic);  // b: acknowledged by itself
  out.clear();
  engine_.OnTimer(pending.timer, pending.at, &out);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_TRUE(engine_.MarkBranchDone(txid, "a", "", kT0, &out).ok());  // idempotent
  EXPECT_THAT(out, IsEmpty());                                         // nothing more to log
  EXPECT_TRUE(engine_.LiveCommits().empty());
  EXPECT_TRUE(engine_.LiveMarks().empty());
  EXPECT_EQ(engine_.QueryOutcome(txid, "a").value(), Outcome::kCommitted);
}

TEST_F(EngineAdminTest, MarkBranchDoneBeforeTheLastBranchLeavesItCommitting) {
  std::string txid = Committing({"a", "b"});
  Actions out = MarkDone(txid, "a", "fixed by hand");
  EXPECT_THAT(Only<LogEnd>(out), IsEmpty());
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kCommitting);
  EXPECT_TRUE(view.branches[0].acknowledged);
  EXPECT_TRUE(view.branches[0].heuristic);
  EXPECT_EQ(engine_.QueryOutcome(txid, "a").value(), Outcome::kCommitted);
  // A checkpoint carries the COMMIT with both branches and the mark.
  ASSERT_EQ(engine_.LiveCommits().size(), 1u);
  EXPECT_EQ(engine_.LiveCommits()[0].branches.size(), 2u);
  ASSERT_EQ(engine_.LiveMarks().size(), 1u);
  EXPECT_EQ(engine_.LiveMarks()[0].txid, txid);
  EXPECT_EQ(engine_.LiveMarks()[0].participant, "a");
  EXPECT_EQ(engine_.LiveMarks()[0].note, "fixed by hand");
}

TEST_F(EngineAdminTest, MarkBranchDoneChangesNothingUntilItsRecordIsDurable) {
  std::string txid = Committing({"a", "b"});
  ArmTimer pending = FailPhase2(txid, "a");
  Actions out;
  ASSERT_TRUE(engine_.MarkBranchDone(txid, "a", "note", kT0, &out).ok());
  auto logged = Only<LogMarkDone>(out);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].txid, txid);
  EXPECT_EQ(logged[0].participant, "a");
  EXPECT_EQ(logged[0].note, "note");
  EXPECT_EQ(out.size(), 1u);
  EXPECT_FALSE(View(txid).branches[0].acknowledged);
  EXPECT_FALSE(View(txid).branches[0].heuristic);
  EXPECT_TRUE(engine_.LiveMarks().empty());
  // Until then the branch's retries go on.
  out.clear();
  engine_.OnTimer(pending.timer, pending.at, &out);
  EXPECT_EQ(Only<SendCommit>(out).size(), 1u);

  out.clear();
  engine_.OnMarkDoneLogged(logged[0], absl::OkStatus(), kT0, &out);
  EXPECT_TRUE(View(txid).branches[0].acknowledged);
  EXPECT_TRUE(View(txid).branches[0].heuristic);
  EXPECT_EQ(engine_.LiveMarks().size(), 1u);
}

TEST_F(EngineAdminTest, MarkDoneWhoseRecordFailedLeavesTheBranchUnmarked) {
  std::string txid = Committing({"a", "b"});
  Actions out;
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &out);
  const LogMarkDone logged = MarkDoneRequested(txid, "a");
  out.clear();
  engine_.OnMarkDoneLogged(logged, absl::FailedPreconditionError("log failed: EIO"), kT0, &out);
  EXPECT_THAT(out, IsEmpty());  // no END
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kCommitting);
  EXPECT_FALSE(view.branches[0].acknowledged);
  EXPECT_FALSE(view.branches[0].heuristic);
  EXPECT_TRUE(engine_.LiveMarks().empty());
}

TEST_F(EngineAdminTest, MarkDoneLoggedAfterTheTransactionEndedChangesNothing) {
  std::string txid = Committing({"a", "b"});
  Actions out;
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &out);
  const LogMarkDone logged = MarkDoneRequested(txid, "a");
  // The agent acknowledged while the record was being written.
  out.clear();
  engine_.OnPhase2Result(txid, "a", absl::OkStatus(), kT0, &out);
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  out.clear();
  engine_.OnMarkDoneLogged(logged, absl::OkStatus(), kT0, &out);
  EXPECT_THAT(out, IsEmpty());
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kCommitted);
  EXPECT_FALSE(view.branches[0].heuristic);
}

TEST_F(EngineAdminTest, RecoveredMarkSettlesItsBranchWithoutPhaseTwo) {
  Actions out;
  engine_.RecoverCommitted("c1.7.40", {{"a", "h:1"}, {"b", "h:2"}},
                           {{"c1.7.40", "a", "restored by hand"}, {"c1.7.40", "zz", ""}}, kT0,
                           &out);
  auto sent = Only<SendCommit>(out);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].branch.participant, "b");
  EXPECT_THAT(Only<LogEnd>(out), IsEmpty());
  TransactionView view = View("c1.7.40");
  EXPECT_EQ(view.state, TxState::kCommitting);
  EXPECT_TRUE(view.branches[0].acknowledged);
  EXPECT_TRUE(view.branches[0].heuristic);
  EXPECT_FALSE(view.branches[1].acknowledged);
  EXPECT_EQ(engine_.QueryOutcome("c1.7.40", "a").value(), Outcome::kCommitted);
  // The next checkpoint carries the mark again.
  ASSERT_EQ(engine_.LiveMarks().size(), 1u);
  EXPECT_EQ(engine_.LiveMarks()[0].note, "restored by hand");
  // b acknowledges: the transaction ends.
  out.clear();
  engine_.OnPhase2Result("c1.7.40", "b", absl::OkStatus(), kT0, &out);
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  EXPECT_TRUE(View("c1.7.40").branches[0].heuristic);
}

TEST_F(EngineAdminTest, RecoveredMarksOnEveryBranchEndTheTransaction) {
  Actions out;
  engine_.RecoverCommitted("c1.7.41", {{"a", "h:1"}, {"b", "h:2"}},
                           {{"c1.7.41", "a", ""}, {"c1.7.41", "b", ""}}, kT0, &out);
  EXPECT_THAT(Only<SendCommit>(out), IsEmpty());
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  TransactionView view = View("c1.7.41");
  EXPECT_EQ(view.state, TxState::kCommitted);
  EXPECT_TRUE(engine_.LiveCommits().empty());
  EXPECT_EQ(engine_.QueryOutcome("c1.7.41", "b").value(), Outcome::kCommitted);
}

TEST_F(EngineAdminTest, MarkBranchDoneIsRefusedForUndecidedTransactionsAndUnknownBranches) {
  std::string active = BeginWith({"a", "b"});
  Actions out;
  EXPECT_EQ(engine_.MarkBranchDone(active, "a", "", kT0, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  std::string txid = Committing({"a", "b"});
  EXPECT_EQ(engine_.MarkBranchDone(txid, "zz", "", kT0, &out).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_.MarkBranchDone("c1.7.999", "a", "", kT0, &out).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineAdminTest, HeuristicMixedAnswerIsRecordedAndStopsTheRetries) {
  std::string txid = Committing({"a", "b"});
  Actions out;
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &out);
  out.clear();
  engine_.OnPhase2Result(
      txid, "a",
      HeuristicMixedError("branch was heuristically aborted by an operator at 2027-01-15"), kT0,
      &out);
  EXPECT_THAT(Only<ArmTimer>(out), IsEmpty());  // asking again cannot help
  TransactionView view = View(txid);
  EXPECT_EQ(view.state, TxState::kCommitting);
  EXPECT_TRUE(view.branches[0].heuristic_mixed);
  EXPECT_THAT(view.branches[0].last_error, HasSubstr("HEURISTIC_MIXED"));
  EXPECT_EQ(engine_.QueryOutcome(txid, "b").value(), Outcome::kCommitted);

  // The operator repairs the branch's data by hand and says so.
  out = MarkDone(txid, "a");
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
  EXPECT_EQ(View(txid).state, TxState::kCommitted);
}

TEST_F(EngineAdminTest, ViewCarriesPhaseTwoTimes) {
  const absl::Time later = kT0 + absl::Seconds(3);
  std::string txid = Committing({"a", "b"});
  ArmTimer pending = FailPhase2(txid, "a");
  Actions out;
  engine_.OnTimer(pending.timer, later, &out);
  TransactionView view = View(txid);
  EXPECT_EQ(view.decided, kT0);
  EXPECT_EQ(view.branches[0].last_attempt, later);
  EXPECT_EQ(view.branches[1].last_attempt, kT0);
}

}  // namespace
}  // namespace txcoord::coordinator
