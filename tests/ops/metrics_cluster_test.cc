// The Prometheus endpoints of real txcoord and txagent processes: after a
// known mix of transactions, each counter says exactly what happened.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "client/transaction.h"
#include "common/vote_proof.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "harness/lock_barrier.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::StartsWith;

class MetricsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.agents = 2;
    options.cluster_id = "metrics";
    options.coordinator_flags = {"--metrics_listen=127.0.0.1:0"};
    options.agent_flags = {"--metrics_listen=127.0.0.1:0"};
    options.agent_flags.insert(options.agent_flags.end(), extra_agent_flags_.begin(),
                               extra_agent_flags_.end());
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    coordinator_ = std::make_unique<Client>(cluster_->coordinator_address());
    for (int i = 0; i < 2; ++i) {
      agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
      ASSERT_TRUE(
          agents_[i]->ExecuteOne("", "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)").ok());
    }
  }

  void TearDown() override {
    agents_.clear();
    coordinator_.reset();
    if (cluster_ == nullptr) return;
    EXPECT_TRUE(cluster_->StopAll().ok());
    if (HasFailure()) {
      cluster_->KeepDir();
      std::cerr << "cluster data and daemon logs kept in " << cluster_->dir() << "\n";
    }
  }

  Scrape ScrapeOf(const std::string& log) {
    absl::StatusOr<std::string> address = MetricsAddressFromLog(log);
    EXPECT_TRUE(address.ok()) << address.status();
    if (!address.ok()) return Scrape();
    absl::StatusOr<Scrape> scrape = ScrapeMetrics(*address);
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    return scrape.ok() ? *std::move(scrape) : Scrape();
  }

  // Begins, inserts row `id` at each of `agents`, commits; expects COMMITTED.
  void CommitInsert(int id, const std::vector<int>& agents) {
    absl::StatusOr<std::string> txid = coordinator_->Begin();
    ASSERT_TRUE(txid.ok()) << txid.status();
    for (int agent : agents) {
      ASSERT_TRUE(
          agents_[agent]->ExecuteOne(*txid, "INSERT INTO t VALUES(?1, 0)", {int64_t{id}}).ok());
    }
    absl::StatusOr<CommitResult> result = coordinator_->Commit(*txid);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_TRUE(result->committed) << result->reason;
  }

  // Begins a transaction that names its branches, inserts row `id` at
  // both agents with early prepare (each YES answer shown to `check`),
  // and commits it; expects COMMITTED.
  void CommitNamedEarlyInsert(int id,
                              const std::function<void(int agent, const ExecuteResult&)>& check) {
    ExecuteOptions early;
    early.prepare = true;
    absl::StatusOr<std::string> txid = coordinator_->Begin();
    ASSERT_TRUE(txid.ok()) << txid.status();
    Transaction tx(*coordinator_, *txid, /*name_branches=*/true);
    for (int a : {0, 1}) {
      absl::StatusOr<ExecuteResult> r =
          tx.Execute(*agents_[a], {{"INSERT INTO t VALUES(?1, 0)", {int64_t{id}}}}, early);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->vote, v1::VOTE_YES);
      check(a, *r);
    }
    absl::StatusOr<CommitResult> result = tx.Commit();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->committed) << result->reason;
  }

  // Set before SetUp. Counts of signed votes must not hang on load.
  std::vector<std::string> extra_agent_flags_ = {"--vote_deferral=never"};
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> coordinator_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
};

TEST_F(MetricsClusterTest, CountersFollowTransactions) {
  Scrape before = ScrapeOf(cluster_->coordinator_log());
  EXPECT_THAT(before.Value("txcoord_commits_total"), Optional(0.0));

  for (int id = 1; id <= 3; ++id) CommitInsert(id, {0, 1});  // two-phase
  CommitInsert(10, {0});                                     // one-phase
  {
    // Aborted by the client.
    absl::StatusOr<std::string> txid = coordinator_->Begin();
    ASSERT_TRUE(txid.ok());
    ASSERT_TRUE(agents_[0]->ExecuteOne(*txid, "INSERT INTO t VALUES(20, 0)").ok());
    ASSERT_TRUE(coordinator_->Abort(*txid).ok());
  }
  {
    // A lock timeout at agent0: `holder` keeps row 1 locked.
    absl::StatusOr<std::string> holder = coordinator_->Begin();
    absl::StatusOr<std::string> waiter = coordinator_->Begin();
    ASSERT_TRUE(holder.ok() && waiter.ok());
    ASSERT_TRUE(agents_[0]->ExecuteOne(*holder, "UPDATE t SET v = 1 WHERE id = 1").ok());
    ExecuteOptions quick;
    quick.lock_timeout = absl::Milliseconds(100);
    absl::StatusOr<SqlResult> blocked =
        agents_[0]->ExecuteOne(*waiter, "UPDATE t SET v = 2 WHERE id = 1", {}, quick);
    EXPECT_EQ(blocked.status().code(), absl::StatusCode::kAborted) << blocked.status();
    ASSERT_TRUE(coordinator_->Abort(*holder).ok());
    ASSERT_TRUE(coordinator_->Abort(*waiter).ok());
  }
  // Phase 2 is asynchronous: wait until every committed row is unlocked at
  // both agents (the barrier is itself one more aborted transaction).
  std::vector<AgentClient*> agents = {agents_[0].get(), agents_[1].get()};
  ASSERT_TRUE(
      AwaitPhase2(*coordinator_, agents, {"UPDATE t SET v = v + 1", {}}, -1, absl::Seconds(30))
          .ok());

  const Scrape coordinator = ScrapeOf(cluster_->coordinator_log());
  EXPECT_THAT(coordinator.Value("txcoord_commits_total"), Optional(4.0)) << coordinator.text;
  EXPECT_THAT(coordinator.Value("txcoord_aborts_total"), Optional(4.0));
  EXPECT_THAT(coordinator.Value("txcoord_votes_total{vote=\"yes\"}"), Optional(6.0));
  EXPECT_THAT(coordinator.Value("txcoord_votes_total{vote=\"no\"}"), Optional(0.0));
  EXPECT_THAT(coordinator.Value("txcoord_phase2_retries_total"), Optional(0.0));
  EXPECT_THAT(
      coordinator.Value("txcoord_commit_latency_seconds_bucket{outcome=\"committed\",le=\"+Inf\"}"),
      Optional(4.0));
  EXPECT_THAT(coordinator.Value("txcoord_commit_latency_seconds_count{outcome=\"committed\"}"),
              Optional(4.0));
  EXPECT_TRUE(coordinator.Value(
      "txcoord_commit_latency_seconds_bucket{outcome=\"committed\",le=\"0.001\"}"));
  EXPECT_GE(coordinator.Value("txcoord_wal_fsync_seconds_count").value_or(0), 3);
  EXPECT_TRUE(coordinator.Value("txcoord_wal_fsync_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_TRUE(coordinator.Value("txcoord_open_transactions"));
  EXPECT_TRUE(coordinator.Value("txcoord_oldest_open_transaction_seconds"));
  // Exported (how many batches form depends on timing: grpc_participant_
  // client_test and coordinator_link_test check the counts).
  EXPECT_TRUE(coordinator.Value("txcoord_participant_batches_total"));
  EXPECT_TRUE(coordinator.Value("txcoord_participant_batched_calls_total"));

  const Scrape agent0 = ScrapeOf(cluster_->agent_log(0));
  EXPECT_THAT(agent0.Value("txagent_commits_total"), Optional(4.0)) << agent0.text;
  EXPECT_THAT(agent0.Value("txagent_prepares_total{vote=\"yes\"}"), Optional(3.0));
  EXPECT_THAT(agent0.Value("txagent_lock_timeouts_total"), Optional(1.0));
  EXPECT_THAT(agent0.Value("txagent_in_doubt_branches"), Optional(0.0));
  // By reason, every reason exported from the start. (How many Aborts
  // have reached the agent by now depends on timing: the coordinator sends
  // them after answering.)
  EXPECT_TRUE(agent0.Value("txagent_aborts_total{reason=\"aborted\"}"));
  EXPECT_THAT(agent0.Value("txagent_aborts_total{reason=\"epoch\"}"), Optional(0.0));
  EXPECT_GE(agent0.Value("txagent_execute_latency_seconds_count").value_or(0), 7);
  EXPECT_TRUE(agent0.Value("txagent_execute_latency_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_TRUE(agent0.Value("txagent_enlist_batches_total"));
  EXPECT_TRUE(agent0.Value("txagent_enlist_batched_total"));

  const Scrape agent1 = ScrapeOf(cluster_->agent_log(1));
  EXPECT_THAT(agent1.Value("txagent_commits_total"), Optional(3.0)) << agent1.text;
  EXPECT_THAT(agent1.Value("txagent_lock_timeouts_total"), Optional(0.0));
}

// Early prepares of transactions that name their branches: once an
// agent's Enlist has brought it the coordinator's key, its YES votes are
// signed into the Execute answers and ride in the Commit, and the agent
// sends no Enlist. The coordinator counts them as votes, and refuses a
// proof the client altered (docs/protocol.md, "Signed votes").
TEST_F(MetricsClusterTest, SignedVotesRideInTheCommitInsteadOfEnlists) {
  ExecuteOptions early;
  early.prepare = true;
  // Unnamed: each vote goes by a synchronous Enlist, whose answer leaves
  // the agent holding a key before the Execute returns.
  CommitInsert(1, {0, 1});
  {
    absl::StatusOr<std::string> txid = coordinator_->Begin();
    ASSERT_TRUE(txid.ok()) << txid.status();
    Transaction tx(*coordinator_, *txid);
    for (int a : {0, 1}) {
      absl::StatusOr<ExecuteResult> r =
          tx.Execute(*agents_[a], {{"INSERT INTO t VALUES(2, 0)", {}}}, early);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(r->vote_proof.empty());
    }
    absl::StatusOr<CommitResult> result = tx.Commit();
    ASSERT_TRUE(result.ok() && result->committed);
  }
  for (int id = 3; id <= 5; ++id) {
    CommitNamedEarlyInsert(id, [&](int a, const ExecuteResult& r) {
      EXPECT_EQ(r.vote_proof.size(), kVoteProofBytes);
      EXPECT_EQ(r.endpoint, cluster_->agent_address(a));
    });
  }
  {
    // The client changes a proof: the Commit is refused and decides nothing.
    absl::StatusOr<std::string> txid = coordinator_->Begin();
    ASSERT_TRUE(txid.ok()) << txid.status();
    ExecuteOptions signed_early = early;
    signed_early.named_in_commit = true;
    signed_early.carries_vote_proof = true;
    std::vector<NamedBranch> named;
    for (int a : {0, 1}) {
      absl::StatusOr<ExecuteResult> r =
          agents_[a]->Execute(*txid, {{"INSERT INTO t VALUES(9, 0)", {}}}, signed_early);
      ASSERT_TRUE(r.ok()) << r.status();
      NameBranch(*r, &named);
    }
    ASSERT_EQ(named.size(), 2u);
    named[1].vote_proof[0] = static_cast<char>(named[1].vote_proof[0] ^ 1);
    absl::StatusOr<CommitResult> result = coordinator_->Commit(*txid, named);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr("vote proof"));
    ASSERT_TRUE(coordinator_->Abort(*txid).ok());
  }
  const Scrape agent0 = ScrapeOf(cluster_->agent_log(0));
  EXPECT_THAT(agent0.Value("txagent_votes_signed_total"), Optional(4.0)) << agent0.text;
  EXPECT_THAT(agent0.Value("txagent_prepares_total{vote=\"yes\"}"), Optional(6.0));
  const Scrape agent1 = ScrapeOf(cluster_->agent_log(1));
  EXPECT_THAT(agent1.Value("txagent_votes_signed_total"), Optional(4.0)) << agent1.text;
  const Scrape coordinator = ScrapeOf(cluster_->coordinator_log());
  // Every YES: two sent by Enlist (transaction 2), six signed and taken
  // from Commits (3 to 5) (the two-phase insert's come from its Prepares).
  EXPECT_THAT(coordinator.Value("txcoord_votes_total{vote=\"yes\"}"), Optional(10.0))
      << coordinator.text;
  EXPECT_THAT(coordinator.Value("txcoord_commits_total"), Optional(5.0));
}

// Agents that defer every vote (--vote_deferral=always): an early prepare
// the client names answers before its sync, with no proof, and its vote
// reaches the coordinator by Enlist, which the Commit waits for.
class DeferredVotesClusterTest : public MetricsClusterTest {
 protected:
  void SetUp() override {
    extra_agent_flags_ = {"--vote_deferral=always"};
    MetricsClusterTest::SetUp();
  }
};

TEST_F(DeferredVotesClusterTest, DeferredVotesReachTheCoordinatorByEnlistAndCommit) {
  for (int id = 1; id <= 3; ++id) {
    CommitNamedEarlyInsert(id,
                           [](int, const ExecuteResult& r) { EXPECT_TRUE(r.vote_proof.empty()); });
  }
  // (Phase 2 runs after each Commit returns: the rows may still be on
  // their way, so the counts below are what this test reads.)
  for (int a : {0, 1}) {
    const Scrape agent = ScrapeOf(cluster_->agent_log(a));
    EXPECT_THAT(agent.Value("txagent_votes_deferred_total"), Optional(3.0)) << agent.text;
    EXPECT_THAT(agent.Value("txagent_votes_signed_total"), Optional(0.0)) << agent.text;
  }
  const Scrape coordinator = ScrapeOf(cluster_->coordinator_log());
  EXPECT_THAT(coordinator.Value("txcoord_votes_total{vote=\"yes\"}"), Optional(6.0))
      << coordinator.text;
  EXPECT_THAT(coordinator.Value("txcoord_commits_total"), Optional(3.0));
}

// With signed votes the coordinator learns of a branch only from the
// Commit, so a Transaction whose early prepare failed (its answer may be
// lost while the branch prepared) must not commit: Commit refuses, sending
// nothing, and Abort reaches the branches that did prepare.
TEST_F(MetricsClusterTest, ATransactionWhoseEarlyPrepareFailedRefusesToCommit) {
  CommitInsert(1, {0, 1});  // unnamed: the agents now hold keys
  ExecuteOptions early;
  early.prepare = true;
  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  Transaction tx(*coordinator_, *txid, /*name_branches=*/true);
  absl::StatusOr<ExecuteResult> good =
      tx.Execute(*agents_[0], {{"INSERT INTO t VALUES(2, 0)", {}}}, early);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_FALSE(good->vote_proof.empty());
  absl::StatusOr<ExecuteResult> bad =
      tx.Execute(*agents_[1], {{"INSERT INTO nowhere VALUES(2)", {}}}, early);
  ASSERT_FALSE(bad.ok());
  absl::StatusOr<CommitResult> commit = tx.Commit();
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kFailedPrecondition) << commit.status();
  EXPECT_THAT(commit.status().message(), HasSubstr("must not commit"));
  ASSERT_TRUE(tx.Abort().ok());
  // The Abort named agent0's signed branch, so it hears the Abort and
  // frees its row: a new transaction takes the row within a short wait.
  absl::StatusOr<std::string> next = coordinator_->Begin();
  ASSERT_TRUE(next.ok()) << next.status();
  ExecuteOptions quick;
  quick.lock_timeout = absl::Milliseconds(1000);
  EXPECT_TRUE(agents_[0]->ExecuteOne(*next, "INSERT INTO t VALUES(2, 1)", {}, quick).ok());
  ASSERT_TRUE(coordinator_->Abort(*next).ok());
}

TEST_F(MetricsClusterTest, EndpointServesOnlyMetrics) {
  absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster_->agent_log(0));
  ASSERT_TRUE(address.ok()) << address.status();
  absl::StatusOr<std::string> other = HttpGet(*address, "/");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(*other, StartsWith("HTTP/1.1 404"));
  absl::StatusOr<std::string> page = HttpGet(*address, "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("# TYPE txagent_in_doubt_branches gauge"));
}

}  // namespace
}  // namespace txcoord::testing
