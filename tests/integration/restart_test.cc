// The harness's restart promise with the real daemons, which crash tests
// build on: a daemon killed or stopped comes back on the same port with the
// same data, and clients holding the old address reach it again.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/daemon_process.h"
#include "harness/eventually.h"
#include "harness/free_port.h"
#include "tests/integration/cluster_fixture.h"

namespace txcoord::testing {
namespace {

class RestartTest : public ClusterFixture {
 protected:
  // Restarts agent `i` with `flags` added to its own; a client that waits
  // for it to serve again.
  std::unique_ptr<AgentClient> RestartAgentWith(int i, std::vector<std::string> flags) {
    cluster_->SetAgentExtraFlags(i, std::move(flags));
    const absl::Status restarted = cluster_->RestartAgent(i);
    EXPECT_TRUE(restarted.ok()) << restarted;
    return WaitingClient(cluster_->agent_address(i));
  }
  static std::unique_ptr<AgentClient> WaitingClient(const std::string& address) {
    AgentClientOptions options;
    options.wait_for_ready = true;
    options.call_timeout = absl::Seconds(5);
    return std::make_unique<AgentClient>(address, options);
  }
  // `sql` in `tx` (which names its branches) at `agent`, prepared at the
  // end of the Execute.
  static absl::StatusOr<ExecuteResult> ExecuteEarly(Transaction& tx, AgentClient& agent,
                                                    const std::string& sql) {
    ExecuteOptions early;
    early.prepare = true;
    return tx.Execute(agent, {{sql, {}}}, early);
  }
  // Whether the one value `sql` reads at `agent` becomes `want` within 30 s.
  static bool EventuallyReads(AgentClient& agent, const std::string& sql, int64_t want) {
    return Eventually(
        [&] {
          absl::StatusOr<SqlResult> read = agent.ExecuteOne("", sql);
          return read.ok() && read->rows.at(0).at(0) == SqlValue(want);
        },
        absl::Seconds(30));
  }
};

TEST_F(RestartTest, KilledAgentComesBackOnItsPortWithItsData) {
  ASSERT_TRUE(agents_[1]
                  ->Execute("", {{"CREATE TABLE t (id INTEGER PRIMARY KEY)", {}},
                                 {"INSERT INTO t (id) VALUES (1), (2)", {}}})
                  .ok());
  const std::string address = cluster_->agent_address(1);
  ASSERT_TRUE(cluster_->KillAgent(1).ok());
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  EXPECT_EQ(cluster_->agent_address(1), address);

  // The process's channel to that address may still hold the dead
  // connection: the first call on it can fail with UNAVAILABLE ("retry the
  // call"); wait_for_ready makes the retry wait for the reconnection.
  AgentClientOptions options;
  options.wait_for_ready = true;
  AgentClient agent(address, options);
  absl::StatusOr<SqlResult> count = agent.ExecuteOne("", "SELECT COUNT(*) FROM t");
  for (int retry = 0; retry < 3 && absl::IsUnavailable(count.status()); ++retry) {
    count = agent.ExecuteOne("", "SELECT COUNT(*) FROM t");
  }
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(count->rows.at(0).at(0), SqlValue(int64_t{2}));
}

TEST_F(RestartTest, StoppedCoordinatorComesBackOnItsPortAndServes) {
  const std::string address = cluster_->coordinator_address();
  absl::StatusOr<std::string> before = coordinator_->Begin();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(cluster_->RestartCoordinator().ok());
  EXPECT_EQ(cluster_->coordinator_address(), address);

  // As for the agent above: the first call on the old connection may fail
  // with UNAVAILABLE ("retry the call").
  ClientOptions options;
  options.wait_for_ready = true;
  Client client(address, options);
  absl::StatusOr<std::string> after = client.Begin();
  for (int retry = 0; retry < 3 && absl::IsUnavailable(after.status()); ++retry) {
    after = client.Begin();
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(*after, *before) << "txids must not repeat across restarts";
  // A transaction of the new epoch works end to end.
  ASSERT_TRUE(agents_[0]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(agents_[0]->ExecuteOne(*after, "INSERT INTO t (id) VALUES (1)").ok());
  absl::StatusOr<CommitResult> commit = client.Commit(*after);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;
}

// An agent stopped (SIGTERM) while the deferred vote of an early prepare
// still waits for its sync (held there 1.5 s by a failpoint) sends that
// vote before it exits: the Commit that names the branch commits, where a
// vote dropped at exit would leave it to time out and abort. (The stop
// waits for the run that holds the vote, and then for the Enlist's
// answer; without that last wait the vote is lost only when its bytes are
// still unsent at exit, which this test cannot force.)
TEST_F(RestartTest, AgentStoppedWhileADeferredVoteWaitsSendsItBeforeExiting) {
  ASSERT_TRUE(agents_[0]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  std::unique_ptr<AgentClient> agent = RestartAgentWith(
      0, {"--vote_deferral=always", "--failpoints=before-deferred-votes-durable=delay:1500"});

  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  Transaction tx(*coordinator_, *txid, /*name_branches=*/true);
  absl::StatusOr<ExecuteResult> insert = ExecuteEarly(tx, *agent, "INSERT INTO t (id) VALUES (1)");
  ASSERT_TRUE(insert.ok()) << insert.status();
  EXPECT_EQ(insert->vote, v1::VOTE_YES);
  EXPECT_TRUE(insert->vote_proof.empty()) << "the vote was to be deferred, not signed";
  const absl::Status stopped = cluster_->StopAgent(0);
  ASSERT_TRUE(stopped.ok()) << stopped;

  absl::StatusOr<CommitResult> commit = tx.Commit();
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;

  // Restarted, the agent holds the branch prepared until phase 2 reaches it.
  cluster_->SetAgentExtraFlags(0, {});
  ASSERT_TRUE(cluster_->StartAgent(0).ok());
  EXPECT_TRUE(
      EventuallyReads(*WaitingClient(cluster_->agent_address(0)), "SELECT COUNT(*) FROM t", 1));
}

// One txagent serves a database. A second one started on the same file
// waits as a standby without opening it or listening (two would each keep
// their own row locks, and one could change rows the other's prepared
// branch promised to commit); once the first is killed with a committed
// branch it had not applied (its phase 2 held by a failpoint), the standby
// takes the database over and settles that branch with the coordinator.
TEST_F(RestartTest, ASecondAgentOnTheSameDatabaseWaitsThenTakesOverItsInDoubtBranch) {
  std::unique_ptr<AgentClient> agent =
      RestartAgentWith(0, {"--failpoints=before-commit-apply=stall"});
  ASSERT_TRUE(agent->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)").ok());
  ASSERT_TRUE(agent->ExecuteOne("", "INSERT INTO t (id, v) VALUES (1, 0)").ok());
  absl::StatusOr<int> port = PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<std::string> binary = AgentBinary();
  ASSERT_TRUE(binary.ok()) << binary.status();
  DaemonOptions standby_options;
  standby_options.binary = *binary;
  standby_options.args = {
      "--db=" + cluster_->agent_db(0), absl::StrCat("--listen=127.0.0.1:", *port),
      "--coordinator=" + cluster_->coordinator_address(), "--name=" + cluster_->agent_name(0)};
  standby_options.log_path = cluster_->dir() + "/standby.log";
  standby_options.ready_log_text = "standby: another txagent serves";
  standby_options.start_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> standby = DaemonProcess::Start(standby_options);
  ASSERT_TRUE(standby.ok()) << standby.status();
  AgentClientOptions options;
  options.wait_for_ready = false;
  options.call_timeout = absl::Milliseconds(500);
  AgentClient not_yet(absl::StrCat("127.0.0.1:", *port), options);
  EXPECT_EQ(not_yet.ExecuteOne("", "SELECT 1").status().code(), absl::StatusCode::kUnavailable)
      << "the standby serves";
  {
    // SIGTERM ends a standby at once, cleanly.
    DaemonOptions second = standby_options;
    second.log_path = cluster_->dir() + "/standby2.log";
    absl::StatusOr<std::unique_ptr<DaemonProcess>> standby2 = DaemonProcess::Start(second);
    ASSERT_TRUE(standby2.ok()) << standby2.status();
    absl::StatusOr<ExitStatus> stopped = (*standby2)->Terminate(absl::Seconds(5));
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_TRUE(stopped->Clean()) << stopped->ToString();
    EXPECT_THAT((*standby2)->LogTail(),
                ::testing::HasSubstr("stopped (a standby; served nothing)"));
  }

  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  Transaction tx(*coordinator_, *txid, /*name_branches=*/true);
  absl::StatusOr<ExecuteResult> update =
      ExecuteEarly(tx, *agent, "UPDATE t SET v = 5 WHERE id = 1");
  ASSERT_TRUE(update.ok()) << update.status();
  absl::StatusOr<CommitResult> commit = tx.Commit();
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;
  ASSERT_TRUE(cluster_->KillAgent(0).ok());

  EXPECT_TRUE(EventuallyReads(*WaitingClient(absl::StrCat("127.0.0.1:", *port)),
                              "SELECT v FROM t WHERE id = 1", 5))
      << (*standby)->LogTail();
  absl::StatusOr<ExitStatus> stopped = (*standby)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->Clean()) << stopped->ToString();
}

// A branch written in two Execute calls, with its agent killed (kill -9) in
// between: the first write died with the process, so the transaction must
// abort; committing the second write alone would half-commit it.
TEST_F(RestartTest, AgentKilledBetweenTwoWritesOfABranchAbortsTheTransaction) {
  ASSERT_TRUE(agents_[1]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(agents_[2]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  ASSERT_TRUE(agents_[1]->ExecuteOne(*txid, "INSERT INTO t (id) VALUES (1)").ok());
  ASSERT_TRUE(agents_[2]->ExecuteOne(*txid, "INSERT INTO t (id) VALUES (1)").ok());
  ASSERT_TRUE(cluster_->KillAgent(1).ok());
  ASSERT_TRUE(cluster_->StartAgent(1).ok());

  AgentClientOptions options;
  options.wait_for_ready = true;
  AgentClient agent(cluster_->agent_address(1), options);
  absl::StatusOr<SqlResult> second = agent.ExecuteOne(*txid, "INSERT INTO t (id) VALUES (2)");
  for (int retry = 0; retry < 3 && absl::IsUnavailable(second.status()); ++retry) {
    second = agent.ExecuteOne(*txid, "INSERT INTO t (id) VALUES (2)");
  }
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted) << second.status();
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr("lost its branch"));

  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_FALSE(commit->committed);
  // Neither agent committed either write.
  absl::StatusOr<SqlResult> restarted = agent.ExecuteOne("", "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(restarted->rows.at(0).at(0), SqlValue(int64_t{0}));
  absl::StatusOr<SqlResult> other = agents_[2]->ExecuteOne("", "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->rows.at(0).at(0), SqlValue(int64_t{0}));
}

// A transaction open when its coordinator was killed can never commit: the
// restarted coordinator (a new epoch) presumes it aborted. Its unprepared
// branch must not keep its rows locked until the agent's idle timeout
// (60 s): the agent rolls it back once an Enlist shows the new epoch.
TEST_F(RestartTest, BranchOpenWhenItsCoordinatorWasKilledFreesItsRowsOnTheNewEpoch) {
  ASSERT_TRUE(
      agents_[0]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)").ok());
  ASSERT_TRUE(agents_[0]->ExecuteOne("", "INSERT INTO t (id, v) VALUES (1, 0), (2, 0)").ok());
  absl::StatusOr<std::string> old = coordinator_->Begin();
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE(agents_[0]->ExecuteOne(*old, "UPDATE t SET v = 1 WHERE id = 1").ok());
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  ASSERT_TRUE(cluster_->StartCoordinator().ok());

  ClientOptions client_options;
  client_options.wait_for_ready = true;
  Client client(cluster_->coordinator_address(), client_options);
  // A transaction of the new epoch writes another row at the same agent.
  // A first call on a dead connection may fail with UNAVAILABLE (the
  // client's Begin, or the agent's Enlist, which rolls the branch back):
  // then a new transaction tries again.
  absl::StatusOr<std::string> next;
  absl::StatusOr<SqlResult> wrote = absl::UnavailableError("not tried");
  for (int attempt = 0; attempt < 4 && absl::IsUnavailable(wrote.status()); ++attempt) {
    next = client.Begin();
    if (absl::IsUnavailable(next.status())) continue;
    ASSERT_TRUE(next.ok()) << next.status();
    wrote = agents_[0]->ExecuteOne(*next, "UPDATE t SET v = 2 WHERE id = 2");
    if (absl::IsUnavailable(wrote.status())) {
      ASSERT_TRUE(client.Abort(*next).ok());
    }
  }
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  // The old branch's row is free well within the idle timeout (the
  // cluster's agents keep the default 60 s, far above this wait).
  ExecuteOptions prompt;
  prompt.lock_timeout = absl::Seconds(5);
  absl::StatusOr<SqlResult> freed =
      agents_[0]->ExecuteOne(*next, "UPDATE t SET v = 2 WHERE id = 1", {}, prompt);
  ASSERT_TRUE(freed.ok()) << freed.status();
  absl::StatusOr<CommitResult> commit = client.Commit(*next);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;

  // The old transaction's later write starts a new branch, which the
  // coordinator refuses: that txid is unknown to the new epoch.
  absl::StatusOr<SqlResult> late = agents_[0]->ExecuteOne(*old, "UPDATE t SET v = 3 WHERE id = 1");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kAborted) << late.status();
  EXPECT_THAT(std::string(late.status().message()), ::testing::HasSubstr("is unknown"));
  absl::StatusOr<SqlResult> rows = agents_[0]->ExecuteOne("", "SELECT SUM(v) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->rows.at(0).at(0), SqlValue(int64_t{4}));
}

}  // namespace
}  // namespace txcoord::testing
