// The runbook's scenarios (docs/operations.md), end to end with real
// daemons and the real txctl: a branch that dies after the commit decision,
// a coordinator whose data directory is lost, an operator's heuristic
// decision that the coordinator contradicts (HEURISTIC_MIXED), and the
// mark-done that settles it surviving a coordinator crash.
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/sqlite_inspect.h"
#include "tests/operators/operators_fixture.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

// The coordinator stalls right after its COMMIT record is durable and
// before anyone hears of it: both branches are prepared and in doubt.
constexpr char kStallAfterCommitLogged[] = "--failpoints=after-commit-logged=stall";

TEST_F(OperatorsTest, BranchDownAfterTheDecisionShowsCommittingThenFinishesAlone) {
  // agent1 dies when phase 2 reaches it, before it applies the commit.
  cluster_->SetAgentExtraFlags(1, {"--failpoints=before-commit-apply=crash"});
  ASSERT_TRUE(cluster_->RestartAgent(1).ok());
  cluster_->SetAgentExtraFlags(1, {});
  agents_[1] = std::make_unique<AgentClient>(cluster_->agent_address(1));

  const std::string txid = BeginAndWrite(42);
  ASSERT_FALSE(txid.empty());
  absl::StatusOr<txcoord::CommitResult> committed = client_->Commit(txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  ASSERT_TRUE(committed->committed) << committed->reason;
  absl::StatusOr<ExitStatus> died = cluster_->agent(1)->Wait(absl::Seconds(30));
  ASSERT_TRUE(died.ok()) << died.status();
  EXPECT_EQ(died->code, kFailpointExitCode);

  // The coordinator keeps retrying agent1: COMMITTING, attempts, last error.
  ASSERT_TRUE(Eventually([&] {
    JsonValue tx = Json(Txctl({"show", txid, "--json"}));
    const JsonValue* b = BranchOf(tx, "agent1");
    return b != nullptr && b->Get("phase2_attempts")->number >= 2;
  }));
  TxctlResult list = Txctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_THAT(list.out, HasSubstr(txid));
  EXPECT_THAT(list.out, HasSubstr("COMMITTING"));
  EXPECT_THAT(list.out, HasSubstr("agent1: UNAVAILABLE"));
  JsonValue listed = Json(Txctl({"list", "--json", "--state=committing"}));
  ASSERT_EQ(listed.Get("transactions")->size(), 1u);
  const JsonValue& tx = listed.Get("transactions")->at(0);
  EXPECT_EQ(tx.Get("txid")->str, txid);
  EXPECT_EQ(tx.Get("state")->str, "COMMITTING");
  const JsonValue* stuck = BranchOf(tx, "agent1");
  ASSERT_NE(stuck, nullptr);
  EXPECT_FALSE(stuck->Get("acknowledged")->boolean);
  EXPECT_GE(stuck->Get("phase2_attempts")->number, 2);
  EXPECT_THAT(stuck->Get("last_error")->str, HasSubstr("UNAVAILABLE"));
  EXPECT_TRUE(BranchOf(tx, "agent0")->Get("acknowledged")->boolean);
  TxctlResult show = Txctl({"show", txid});
  EXPECT_THAT(show.out, HasSubstr("phase 2 is retrying agent1"));
  // A decided commit cannot be aborted.
  EXPECT_EQ(Txctl({"abort", txid}).exit_code, 3);

  // agent1 comes back; the transaction completes with no operator action.
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  ASSERT_TRUE(Eventually([&] {
    return Json(Txctl({"show", txid, "--json"})).Get("state")->str == "COMMITTED";
  }));
  Txctl({"show", txid});
  EXPECT_EQ(ValueAt(0), 42);
  EXPECT_EQ(ValueAt(1), 42);
  EXPECT_EQ(Json(Txctl({"list", "--json"})).Get("transactions")->size(), 0u);
}

TEST_F(OperatorsTest, CoordinatorDataLostOperatorResolvesTheInDoubtBranches) {
  cluster_->SetCoordinatorExtraFlags({kStallAfterCommitLogged});
  ASSERT_TRUE(cluster_->RestartCoordinator().ok());
  const std::string txid = BeginAndWrite(7);
  ASSERT_FALSE(txid.empty());
  const std::string old_cluster = txid.substr(0, txid.find('.'));
  std::thread commit = CommitInBackground(txid);
  ASSERT_TRUE(LogContains(cluster_->coordinator_log(), "failpoint after-commit-logged hit"));

  // The coordinator dies and its data directory is lost: a new one starts
  // in its place with a new identity and knows nothing of the transaction.
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  commit.join();
  std::filesystem::remove_all(cluster_->coordinator_data_dir());
  cluster_->SetCoordinatorExtraFlags({});
  ASSERT_TRUE(cluster_->StartCoordinator().ok());

  TxctlResult in_doubt = TxctlAt(0, {"in-doubt"});
  ASSERT_EQ(in_doubt.exit_code, 0) << in_doubt;
  EXPECT_THAT(in_doubt.out, HasSubstr(txid));
  JsonValue listed = Json(TxctlAt(0, {"in-doubt", "--json"}));
  ASSERT_EQ(listed.Get("branches")->size(), 1u);
  EXPECT_EQ(listed.Get("branches")->at(0).Get("txid")->str, txid);
  EXPECT_EQ(listed.Get("branches")->at(0).Get("coordinator")->str, old_cluster);
  // Its vote went with the coordinator's Prepare: the agent waits on it.
  EXPECT_EQ(listed.Get("branches")->at(0).Get("vote")->str, "SENT");
  EXPECT_THAT(in_doubt.out, HasSubstr("VOTE"));
  EXPECT_EQ(listed.Get("participant")->str, "agent0");
  // The new coordinator refuses to answer for a txid it does not own.
  EXPECT_EQ(Txctl({"show", txid}).exit_code, 3);

  // The COMMIT was durable before the loss: the operator commits both.
  for (int i = 0; i < 2; ++i) {
    TxctlResult resolved =
        TxctlAt(i, {"resolve", txid, "--commit", "--reason=coordinator data dir lost"});
    ASSERT_EQ(resolved.exit_code, 0) << resolved;
  }
  EXPECT_EQ(ValueAt(0), 7);
  EXPECT_EQ(ValueAt(1), 7);
  EXPECT_EQ(Json(TxctlAt(0, {"in-doubt", "--json"})).Get("branches")->size(), 0u);
  TxctlAt(0, {"heuristics"});
  JsonValue heuristics = Json(TxctlAt(0, {"heuristics", "--json"}));
  ASSERT_EQ(heuristics.Get("decisions")->size(), 1u);
  const JsonValue& decision = heuristics.Get("decisions")->at(0);
  EXPECT_EQ(decision.Get("txid")->str, txid);
  EXPECT_EQ(decision.Get("decision")->str, "COMMITTED");
  EXPECT_EQ(decision.Get("reason")->str, "coordinator data dir lost");
  EXPECT_FALSE(decision.Get("heuristic_mixed")->boolean);
  absl::StatusOr<int64_t> recorded = QueryInt64(
      cluster_->agent_db(0), absl::StrCat("SELECT COUNT(*) FROM _txcoord_heuristics WHERE txid = '",
                                          txid, "' AND decision = 'committed'"));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(*recorded, 1);
  // A decision cannot be reversed; an unknown branch is not found.
  EXPECT_EQ(TxctlAt(0, {"resolve", txid, "--abort"}).exit_code, 3);
  EXPECT_EQ(TxctlAt(0, {"resolve", old_cluster + ".1.999999", "--commit"}).exit_code, 2);
}

TEST_F(OperatorsTest, HeuristicAbortContradictedByTheCoordinatorIsHeuristicMixedOnBothSides) {
  cluster_->SetCoordinatorExtraFlags({kStallAfterCommitLogged});
  ASSERT_TRUE(cluster_->RestartCoordinator().ok());
  const std::string txid = BeginAndWrite(9);
  ASSERT_FALSE(txid.empty());
  std::thread commit = CommitInBackground(txid);
  ASSERT_TRUE(LogContains(cluster_->coordinator_log(), "failpoint after-commit-logged hit"));
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  commit.join();
  // Its log, read offline: the COMMIT is there and has no END.
  TxctlResult dump = Txctl({"wal", "dump", cluster_->coordinator_data_dir()});
  ASSERT_EQ(dump.exit_code, 0) << dump;
  EXPECT_THAT(dump.out, HasSubstr("1 committed transaction(s) without END"));
  EXPECT_THAT(dump.out, HasSubstr(txid));

  // A wrong guess while the coordinator is down: abort agent0's branch.
  ASSERT_EQ(TxctlAt(0, {"resolve", txid, "--abort", "--reason=guessed abort"}).exit_code, 0);
  EXPECT_EQ(ValueAt(0), 0);

  // The coordinator comes back with its log, which says COMMIT.
  cluster_->SetCoordinatorExtraFlags({});
  ASSERT_TRUE(cluster_->StartCoordinator().ok());
  ASSERT_TRUE(Eventually([&] {
    JsonValue tx = Json(Txctl({"show", txid, "--json"}));
    const JsonValue* a0 = BranchOf(tx, "agent0");
    const JsonValue* a1 = BranchOf(tx, "agent1");
    return a0 != nullptr && a0->Get("heuristic_mixed")->boolean && a1->Get("acknowledged")->boolean;
  }));
  JsonValue tx = Json(Txctl({"show", txid, "--json"}));
  EXPECT_EQ(tx.Get("state")->str, "COMMITTING");
  EXPECT_TRUE(tx.Get("heuristic_mixed")->boolean);
  EXPECT_THAT(BranchOf(tx, "agent0")->Get("last_error")->str, HasSubstr("HEURISTIC_MIXED"));
  EXPECT_THAT(BranchOf(tx, "agent0")->Get("last_error")->str,
              HasSubstr("heuristically aborted by an operator"));
  TxctlResult show = Txctl({"show", txid});
  EXPECT_THAT(show.out, HasSubstr("txctl mark-done " + txid + " agent0"));
  EXPECT_THAT(Txctl({"list"}).out, HasSubstr("HEURISTIC_MIXED at agent0"));
  EXPECT_EQ(ValueAt(1), 9);  // committed at agent1, aborted at agent0
  EXPECT_EQ(ValueAt(0), 0);

  // The agent says so too: an ERROR line and a listed contradiction.
  EXPECT_TRUE(LogContains(cluster_->agent_log(0), absl::StrCat("txid=", txid, " HEURISTIC_MIXED")));
  EXPECT_TRUE(
      LogContains(cluster_->coordinator_log(), absl::StrCat("txid=", txid, " HEURISTIC_MIXED")));
  EXPECT_THAT(LogLines(cluster_->agent_log(0), "HEURISTIC"), ::testing::Not(::testing::IsEmpty()));
  EXPECT_THAT(LogLines(cluster_->coordinator_log(), "HEURISTIC_MIXED"),
              ::testing::Not(::testing::IsEmpty()));
  TxctlAt(0, {"heuristics"});
  JsonValue mixed = Json(TxctlAt(0, {"heuristics", "--json", "--mixed-only"}));
  ASSERT_EQ(mixed.Get("decisions")->size(), 1u);
  EXPECT_EQ(mixed.Get("decisions")->at(0).Get("coordinator_outcome")->str, "COMMITTED");

  // Retrying cannot help: the agent answers the same.
  TxctlResult retried = Txctl({"retry", txid});
  ASSERT_EQ(retried.exit_code, 0) << retried;
  EXPECT_THAT(retried.out, HasSubstr("phase 2 resent to 1 branch(es)"));

  // The operator repairs agent0's data by hand and tells the coordinator.
  ASSERT_TRUE(agents_[0]->Execute("", {{"UPDATE kv SET v = 9 WHERE k = 1", {}}}).ok());
  TxctlResult done =
      Txctl({"mark-done", txid, "agent0", "--note=set v=9 by hand after HEURISTIC_MIXED"});
  ASSERT_EQ(done.exit_code, 0) << done;
  JsonValue after = Json(Txctl({"show", txid, "--json"}));
  EXPECT_EQ(after.Get("state")->str, "COMMITTED");
  EXPECT_TRUE(BranchOf(after, "agent0")->Get("heuristic")->boolean);
  EXPECT_FALSE(BranchOf(after, "agent1")->Get("heuristic")->boolean);
}

TEST_F(OperatorsTest, MarkDoneSurvivesACoordinatorCrash) {
  // As above: a wrong heuristic abort at agent0 while the coordinator is
  // down after its COMMIT, so agent0 answers HEURISTIC_MIXED. agent1 is down
  // too, so the transaction stays COMMITTING after agent0 is marked done.
  cluster_->SetCoordinatorExtraFlags({kStallAfterCommitLogged});
  ASSERT_TRUE(cluster_->RestartCoordinator().ok());
  const std::string txid = BeginAndWrite(5);
  ASSERT_FALSE(txid.empty());
  std::thread commit = CommitInBackground(txid);
  ASSERT_TRUE(LogContains(cluster_->coordinator_log(), "failpoint after-commit-logged hit"));
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  commit.join();
  ASSERT_EQ(TxctlAt(0, {"resolve", txid, "--abort", "--reason=guessed abort"}).exit_code, 0);
  ASSERT_TRUE(cluster_->StopAgent(1).ok());
  cluster_->SetCoordinatorExtraFlags({});
  ASSERT_TRUE(cluster_->StartCoordinator().ok());
  ASSERT_TRUE(Eventually([&] {
    JsonValue tx = Json(Txctl({"show", txid, "--json"}));
    const JsonValue* a0 = BranchOf(tx, "agent0");
    return a0 != nullptr && a0->Get("heuristic_mixed")->boolean;
  }));

  ASSERT_TRUE(agents_[0]->Execute("", {{"UPDATE kv SET v = 5 WHERE k = 1", {}}}).ok());
  TxctlResult done = Txctl({"mark-done", txid, "agent0", "--note=set v=5 by hand"});
  ASSERT_EQ(done.exit_code, 0) << done;
  EXPECT_THAT(done.out, HasSubstr("marked done"));
  JsonValue marked = Json(Txctl({"show", txid, "--json"}));
  EXPECT_EQ(marked.Get("state")->str, "COMMITTING");  // agent1 is still down
  EXPECT_TRUE(BranchOf(marked, "agent0")->Get("heuristic")->boolean);

  // The coordinator crashes; its log holds the mark.
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  TxctlResult dump = Txctl({"wal", "dump", cluster_->coordinator_data_dir()});
  ASSERT_EQ(dump.exit_code, 0) << dump;
  EXPECT_THAT(dump.out, HasSubstr("MARK_DONE"));
  EXPECT_THAT(dump.out, HasSubstr("agent0 marked done: set v=5 by hand"));
  EXPECT_THAT(dump.out, HasSubstr("1 committed transaction(s) without END"));
  const std::string mixed_at_agent0 = absl::StrCat("txid=", txid, " HEURISTIC_MIXED at agent0");
  const size_t mixed_before = LogLines(cluster_->coordinator_log(), mixed_at_agent0).size();
  ASSERT_GE(mixed_before, 1u);

  ASSERT_TRUE(cluster_->StartCoordinator().ok());
  EXPECT_TRUE(LogContains(cluster_->coordinator_log(), "(1 marked done by an operator)"));
  // Phase 2 is re-driven to agent1 (down: its attempts grow), never to agent0.
  ASSERT_TRUE(Eventually([&] {
    JsonValue tx = Json(Txctl({"show", txid, "--json"}));
    const JsonValue* a1 = BranchOf(tx, "agent1");
    return a1 != nullptr && a1->Get("phase2_attempts")->number >= 3;
  }));
  JsonValue restarted = Json(Txctl({"show", txid, "--json"}));
  EXPECT_EQ(restarted.Get("state")->str, "COMMITTING");
  const JsonValue* a0 = BranchOf(restarted, "agent0");
  ASSERT_NE(a0, nullptr);
  EXPECT_TRUE(a0->Get("acknowledged")->boolean);
  EXPECT_TRUE(a0->Get("heuristic")->boolean);
  EXPECT_FALSE(a0->Get("heuristic_mixed")->boolean);
  EXPECT_EQ(a0->Get("phase2_attempts")->number, 0);
  EXPECT_EQ(LogLines(cluster_->coordinator_log(), mixed_at_agent0).size(), mixed_before);
  Txctl({"show", txid});

  // agent1 comes back: the transaction ends, agent0 still marked.
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  ASSERT_TRUE(Eventually([&] {
    return Json(Txctl({"show", txid, "--json"})).Get("state")->str == "COMMITTED";
  }));
  EXPECT_TRUE(BranchOf(Json(Txctl({"show", txid, "--json"})), "agent0")->Get("heuristic")->boolean);
  EXPECT_EQ(ValueAt(0), 5);
  EXPECT_EQ(ValueAt(1), 5);
}

// A Commit that names a branch whose Enlist never comes waits in PREPARING
// until the prepare timeout: txctl shows the branch as awaited and says
// what to check, and the transaction then aborts by itself.
TEST_F(OperatorsTest, ABranchNamedInTheCommitButNeverEnlistedShowsAwaitedThenAborts) {
  absl::StatusOr<BeginResult> begun = client_->BeginWith(absl::Seconds(60));
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_TRUE(begun->checks_named_branches);
  ExecuteOptions named;
  named.named_in_commit = true;
  absl::StatusOr<ExecuteResult> wrote =
      agents_[0]->Execute(begun->txid, {{"UPDATE kv SET v = 5 WHERE k = 1", {}}}, named);
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  // agent1 is named, but nothing was ever written there: no Enlist comes.
  std::vector<NamedBranch> branches = {{wrote->participant, wrote->branch_token},
                                       {"agent1", 12345}};
  // Its answer comes at the prepare timeout (5 s), after this client has
  // stopped waiting (3 s): the outcome is read below.
  std::thread commit([&] { client_->Commit(begun->txid, branches).IgnoreError(); });

  ASSERT_TRUE(Eventually([&] {
    JsonValue tx = Json(Txctl({"show", begun->txid, "--json"}));
    const JsonValue* b = BranchOf(tx, "agent1");
    return b != nullptr && b->Get("awaited")->boolean;
  }));
  JsonValue tx = Json(Txctl({"show", begun->txid, "--json"}));
  EXPECT_EQ(tx.Get("state")->str, "PREPARING");
  EXPECT_FALSE(BranchOf(tx, "agent0")->Get("awaited")->boolean);
  TxctlResult show = Txctl({"show", begun->txid});
  EXPECT_THAT(show.out, HasSubstr("awaited: named in the Commit, not enlisted yet"));
  EXPECT_THAT(show.out, HasSubstr("awaiting the Enlist of agent1"));
  EXPECT_THAT(Txctl({"list"}).out, HasSubstr("awaiting agent1's Enlist"));

  commit.join();
  ASSERT_TRUE(Eventually([&] {
    return Json(Txctl({"show", begun->txid, "--json"})).Get("state")->str == "ABORTED";
  }));
  EXPECT_THAT(Json(Txctl({"show", begun->txid, "--json"})).Get("reason")->str,
              HasSubstr("never enlisted"));
}

}  // namespace
}  // namespace txcoord::testing
