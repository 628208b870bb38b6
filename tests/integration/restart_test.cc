// The harness's restart promise with the real daemons, which crash tests
// build on: a daemon killed or stopped comes back on the same port with the
// same data, and clients holding the old address reach it again.
#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_fixture.h"

namespace txcoord::testing {
namespace {

using RestartTest = ClusterFixture;

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

}  // namespace
}  // namespace txcoord::testing
