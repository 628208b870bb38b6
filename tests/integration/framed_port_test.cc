// Services that send Execute and Commit to the daemons' framed ports
// (--framed_listen; AgentClientOptions and ClientOptions::framed_address)
// get what they get over gRPC: the same results, the same errors,
// transfers that conserve money, an agent found again after its restart,
// and daemons that stop cleanly with framed connections open. The
// coordinator sends its Participant calls to the framed ports the agents'
// enlistments name, and over gRPC when told not to or when a port is gone.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/bank.h"
#include "harness/eventually.h"
#include "harness/sqlite_inspect.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FramedPortTest : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    options.agent_framed_port = true;
    options.coordinator_framed_port = true;
    options.agent_flags = {"--metrics_listen=127.0.0.1:0"};
    options.coordinator_flags = {"--metrics_listen=127.0.0.1:0"};
    return options;
  }

  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    // agents_ and coordinator_ send Execute and Commit on the framed
    // ports; grpc_agents_ and grpc_coordinator_ on gRPC.
    ASSERT_THAT(cluster_->coordinator_framed_address(), Not(""));
    ClientOptions client_options;
    client_options.framed_address = cluster_->coordinator_framed_address();
    coordinator_ = std::make_unique<Client>(cluster_->coordinator_address(), client_options);
    grpc_coordinator_ = std::make_unique<Client>(cluster_->coordinator_address());
    agents_.clear();
    owned_agents_.clear();
    for (int i = 0; i < cluster_->agent_count(); ++i) {
      ASSERT_THAT(cluster_->agent_framed_address(i), Not(""));
      AgentClientOptions options;
      options.framed_address = cluster_->agent_framed_address(i);
      owned_agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i), options));
      agents_.push_back(owned_agents_.back().get());
      grpc_agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
    }
  }

  void TearDown() override {
    grpc_agents_.clear();
    grpc_coordinator_.reset();
    ClusterFixture::TearDown();
  }

  // Waits until the agents' tables `t` hold `rows` rows in all.
  bool RowsBecome(int64_t rows) {
    return Eventually(
        [&] {
          absl::StatusOr<int64_t> counted =
              SumQueryInt64(cluster_->agent_dbs(), "SELECT COUNT(*) FROM t");
          return counted.ok() && *counted == rows;
        },
        absl::Seconds(10));
  }
  // Begin on `client`, tried again while its channel reconnects (right
  // after the coordinator restarted).
  absl::StatusOr<Transaction> BeginWhenReachable(Client& client) {
    absl::StatusOr<Transaction> tx;
    Eventually(
        [&] {
          tx = client.BeginTransaction(absl::Seconds(30));
          return tx.ok();
        },
        absl::Seconds(10));
    return tx;
  }
  static std::string Contents(const std::string& path) {
    std::ifstream file(path);
    return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  }

  // txagent_framed_calls_total of agent `i`, over every method.
  double FramedCalls(int i) { return AgentCounter(i, "txagent_framed_calls_total"); }
  // txcoord_framed_calls_total{method="Coordinator.Commit"}.
  double FramedCommits() {
    return CoordinatorCounter("txcoord_framed_calls_total{method=\"Coordinator.Commit\"}");
  }
  // txcoord_framed_calls_total{method="Coordinator.Enlist"} and EnlistBatch's.
  double FramedEnlists() {
    return std::max(0.0, CoordinatorCounter(
                             "txcoord_framed_calls_total{method=\"Coordinator.Enlist\"}")) +
           std::max(0.0, CoordinatorCounter(
                             "txcoord_framed_calls_total{method=\"Coordinator.EnlistBatch\"}"));
  }
  // txcoord_wal_batches_total{writer=`writer`}.
  double Batches(const std::string& writer) {
    return CoordinatorCounter(absl::StrCat("txcoord_wal_batches_total{writer=\"", writer, "\"}"));
  }
  double CoordinatorCounter(const std::string& metric) {
    return CounterIn(cluster_->coordinator_log(), metric);
  }
  double AgentCounter(int i, const std::string& metric) {
    return CounterIn(cluster_->agent_log(i), metric);
  }

  // `metric` ("name" for the sum of its series, or "name{labels}" for
  // one) on the daemon logging to `log`; -1 when the page lacks it.
  double CounterIn(const std::string& log, const std::string& metric) {
    absl::StatusOr<double> value = MetricInLog(log, metric);
    EXPECT_TRUE(value.ok() || absl::IsNotFound(value.status())) << value.status();
    return value.ok() ? *value : -1;
  }

  std::vector<std::unique_ptr<AgentClient>> grpc_agents_;
  std::unique_ptr<Client> grpc_coordinator_;
};

TEST_F(FramedPortTest, BranchesRunAtOnceCommitEverywhere) {
  ASSERT_TRUE(agents_[0]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").ok());
  ASSERT_TRUE(agents_[1]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").ok());
  ASSERT_TRUE(agents_[2]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").ok());
  absl::StatusOr<Transaction> tx = coordinator_->BeginTransaction(absl::Seconds(30));
  ASSERT_TRUE(tx.ok()) << tx.status();
  ExecuteOptions prepare;
  prepare.prepare = true;
  std::vector<Transaction::Branch> branches;
  for (int i = 0; i < 3; ++i) {
    branches.push_back(
        {agents_[i], {{"INSERT INTO t (id, v) VALUES (?1, ?2)", {int64_t{i}, "framed"}}}, prepare});
  }
  std::vector<absl::StatusOr<ExecuteResult>> results = tx->ExecuteAll(branches);
  ASSERT_EQ(results.size(), 3u);
  for (const absl::StatusOr<ExecuteResult>& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->vote, v1::VOTE_YES);
    EXPECT_EQ(result->results.at(0).changes, 1);
  }
  absl::StatusOr<CommitResult> committed = tx->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  // Phase 2 reaches the agents after the decision: read their files.
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<int64_t> rows =
            SumQueryInt64(cluster_->agent_dbs(), "SELECT COUNT(*) FROM t WHERE v = 'framed'");
        return rows.ok() && *rows == 3;
      },
      absl::Seconds(10)));
  // The create and the branch came on the framed port, and so did the
  // Commit, and the coordinator's phase 2 after it.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Eventually([&] { return FramedCalls(i) == 3; }, absl::Seconds(10)))
        << "agent " << i << ": " << FramedCalls(i);
  }
  EXPECT_EQ(FramedCommits(), 1);
  // Counted once the answers are read, after the agents count the calls.
  EXPECT_TRUE(
      Eventually([&] { return CoordinatorCounter("txcoord_framed_participant_calls_total") == 3; },
                 absl::Seconds(10)))
      << CoordinatorCounter("txcoord_framed_participant_calls_total");
}

// A Commit that carries its branches' signed votes decides on the thread
// that serves it, and with the log idle that thread writes and syncs the
// COMMIT record itself (wal-format.md, "Writing: group commit"). An agent
// signs once it has this coordinator's key, from its first enlistment.
TEST_F(FramedPortTest, ACommitCarryingItsVotesWritesItsRecordOnItsOwnThread) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").ok());
  }
  ClientOptions reserving;
  reserving.framed_address = cluster_->coordinator_framed_address();
  reserving.reserve_txids = 8;
  Client client(cluster_->coordinator_address(), reserving);
  constexpr int kTransactions = 4;
  for (int n = 0; n < kTransactions; ++n) {
    absl::StatusOr<Transaction> tx = client.BeginTransaction(absl::Seconds(30));
    ASSERT_TRUE(tx.ok()) << tx.status();
    ExecuteOptions prepare;
    prepare.prepare = true;
    std::vector<Transaction::Branch> branches;
    for (int i = 0; i < 3; ++i) {
      branches.push_back({agents_[i],
                          {{"INSERT INTO t (id, v) VALUES (?1, ?2)", {int64_t{n * 3 + i}, "own"}}},
                          prepare});
    }
    for (const absl::StatusOr<ExecuteResult>& result : tx->ExecuteAll(branches)) {
      ASSERT_TRUE(result.ok()) << result.status();
    }
    absl::StatusOr<CommitResult> committed = tx->Commit();
    ASSERT_TRUE(committed.ok()) << committed.status();
    ASSERT_TRUE(committed->committed) << committed->reason;
    // Phase 2 done and its END written before the next one begins: the
    // EXPIRED mark, and a COMMIT and an END per transaction.
    ASSERT_TRUE(RowsBecome((n + 1) * 3));
    ASSERT_TRUE(Eventually([&] { return Batches("log") + Batches("appender") == 3 + 2 * n; },
                           absl::Seconds(10)))
        << Batches("log") << " + " << Batches("appender");
  }
  // The writer wrote the EXPIRED mark, and the first COMMIT if that Commit
  // came before the agents' Enlists (no key yet: it then decided when the
  // last vote arrived, on another thread). Every other Commit decided and
  // wrote on its own thread, and each END (no sync, nobody waiting,
  // nothing else queued) was written by the thread that appended it.
  EXPECT_EQ(Batches("log") + Batches("appender"), 1 + 2 * kTransactions);
  EXPECT_LE(Batches("log"), 2);
  EXPECT_GE(Batches("appender"), 2 * kTransactions - 1);
}

TEST_F(FramedPortTest, TransfersConserveMoneyAndLeaveNothingPrepared) {
  BankOptions options;
  options.accounts = 60;
  options.hot_accounts = 5;  // lock conflicts end in ABORTED over the framed port
  options.hot_share = 0.3;
  options.lock_timeout = absl::Milliseconds(300);
  options.early_prepare = true;
  options.name_branches = 0.5;
  Bank bank(coordinator_.get(), agents_, options);
  ASSERT_TRUE(bank.CreateAccounts().ok());
  const TransferTally tally = RunTransfers(bank, /*threads=*/6, /*each=*/40);
  const int committed = tally.committed;
  EXPECT_GT(committed, 0);
  EXPECT_TRUE(tally.unexpected.empty())
      << tally.unexpected.size() << " unexpected outcomes, e.g. " << tally.unexpected.front();
  for (int i = 0; i < 3; ++i) EXPECT_GE(FramedCalls(i), committed) << "agent " << i;
  EXPECT_GE(FramedCommits(), committed);
  ExpectSettledAndConserved(bank, *cluster_);
}

TEST_F(FramedPortTest, ErrorsComeBackAsTheyDoOverGrpc) {
  ExecuteOptions prepare;
  prepare.prepare = true;
  struct Case {
    std::string txid;
    std::vector<SqlStatement> statements;
    ExecuteOptions options;
  };
  const std::vector<Case> cases = {
      {"", {{"SELECT * FROM no_such_table", {}}}, {}},
      {"", {}, {}},
      {"not a txid", {{"SELECT 1", {}}}, {}},
      {"", {{"SELECT 1", {}}}, prepare},
      {"", {{std::string("SELECT 1\0 DROP TABLE x", 22), {}}}, {}},
      {"", {{"ATTACH DATABASE '/tmp/x.db' AS x", {}}}, {}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    absl::StatusOr<ExecuteResult> framed = agents_[0]->Execute(c.txid, c.statements, c.options);
    absl::StatusOr<ExecuteResult> grpc = grpc_agents_[0]->Execute(c.txid, c.statements, c.options);
    ASSERT_FALSE(grpc.ok()) << "case " << i;
    EXPECT_EQ(framed.status(), grpc.status()) << "case " << i;
  }
  // Each framed answer came from the framed port, not from gRPC.
  EXPECT_EQ(FramedCalls(0), static_cast<double>(cases.size()));
}

TEST_F(FramedPortTest, CommitErrorsComeBackAsTheyDoOverGrpc) {
  ClientOptions once;
  once.settle_timeout = absl::ZeroDuration();
  once.framed_address = cluster_->coordinator_framed_address();
  Client framed(cluster_->coordinator_address(), once);
  once.framed_address = "";
  Client grpc(cluster_->coordinator_address(), once);
  absl::StatusOr<std::string> begun = grpc.Begin(absl::Seconds(30));
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_TRUE(grpc.Abort(*begun).ok());
  const std::vector<std::string> txids = {
      "not a txid",
      "other.1.1",    // another coordinator's
      "it.1.999999",  // never issued here
  };
  for (const std::string& txid : txids) {
    absl::StatusOr<CommitResult> over_framed = framed.Commit(txid);
    absl::StatusOr<CommitResult> over_grpc = grpc.Commit(txid);
    ASSERT_FALSE(over_grpc.ok()) << txid;
    EXPECT_EQ(over_framed.status(), over_grpc.status()) << txid;
  }
  EXPECT_EQ(FramedCommits(), static_cast<double>(txids.size()));
  // An aborted transaction's Commit answers ABORTED with its reason alike.
  absl::StatusOr<CommitResult> over_framed = framed.Commit(*begun);
  absl::StatusOr<CommitResult> over_grpc = grpc.Commit(*begun);
  ASSERT_TRUE(over_framed.ok()) << over_framed.status();
  ASSERT_TRUE(over_grpc.ok()) << over_grpc.status();
  EXPECT_FALSE(over_framed->committed);
  EXPECT_EQ(over_framed->reason, over_grpc->reason);
  EXPECT_EQ(FramedCommits(), static_cast<double>(txids.size() + 1));
}

// With TLS credentials a client never falls back to plain TCP: the framed
// addresses are ignored, and the calls go over gRPC with the credentials.
TEST_F(FramedPortTest, FramedAddressesAreIgnoredWithCredentials) {
  ClientOptions options;
  options.framed_address = cluster_->coordinator_framed_address();
  options.credentials = grpc::InsecureChannelCredentials();  // stands in for TLS ones
  Client coordinator(cluster_->coordinator_address(), options);
  AgentClientOptions agent_options;
  agent_options.framed_address = cluster_->agent_framed_address(0);
  agent_options.credentials = grpc::InsecureChannelCredentials();
  AgentClient agent(cluster_->agent_address(0), agent_options);
  ASSERT_TRUE(agent.ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  absl::StatusOr<std::string> txid = coordinator.Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  ASSERT_TRUE(agent.ExecuteOne(*txid, "INSERT INTO t VALUES (1)").ok());
  absl::StatusOr<CommitResult> committed = coordinator.Commit(*txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  EXPECT_EQ(FramedCommits(), 0);
  // The agent's one framed call is the coordinator's one-phase commit.
  EXPECT_EQ(CoordinatorCounter("txcoord_framed_participant_calls_total"), 1);
  EXPECT_TRUE(Eventually([&] { return FramedCalls(0) == 1; }, absl::Seconds(10))) << FramedCalls(0);
}

// The coordinator sends Prepare, Commit and one-phase commits to the
// framed ports the agents' enlistments name, whatever port the service
// used: here every client call goes over gRPC.
TEST_F(FramedPortTest, PrepareAndPhaseTwoGoToTheAgentsFramedPorts) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grpc_agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  absl::StatusOr<std::string> txid = grpc_coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grpc_agents_[i]->ExecuteOne(*txid, "INSERT INTO t VALUES (1)").ok());
  }
  absl::StatusOr<CommitResult> committed = grpc_coordinator_->Commit(*txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  absl::StatusOr<std::string> one_branch = grpc_coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(one_branch.ok()) << one_branch.status();
  ASSERT_TRUE(grpc_agents_[0]->ExecuteOne(*one_branch, "INSERT INTO t VALUES (2)").ok());
  committed = grpc_coordinator_->Commit(*one_branch);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  // Three Prepares, three Commits (after the decision) and one one-phase
  // commit, each on an agent's framed port; none fell back to gRPC.
  EXPECT_TRUE(
      Eventually([&] { return CoordinatorCounter("txcoord_framed_participant_calls_total") == 7; },
                 absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] { return FramedCalls(0) == 3; }, absl::Seconds(10)));
  EXPECT_EQ(FramedCalls(1), 2);
  EXPECT_EQ(FramedCalls(2), 2);
  EXPECT_EQ(CoordinatorCounter("txcoord_framed_participant_fallbacks_total"), 0);
  absl::StatusOr<int64_t> rows = SumQueryInt64(cluster_->agent_dbs(), "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 4);
}

// Each agent learns the coordinator's framed port from its first Enlist
// answer and sends its later Enlists there, waited for or not.
TEST_F(FramedPortTest, AgentsEnlistOnTheCoordinatorsFramedPortOnceAnAnswerNamesIt) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grpc_agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  // Two transactions whose Executes wait for their Enlists: the first
  // three go over gRPC, and their answers name the framed port.
  for (int n = 1; n <= 2; ++n) {
    absl::StatusOr<std::string> txid = grpc_coordinator_->Begin(absl::Seconds(30));
    ASSERT_TRUE(txid.ok()) << txid.status();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          grpc_agents_[i]->ExecuteOne(*txid, absl::StrCat("INSERT INTO t VALUES (", n, ")")).ok());
    }
    absl::StatusOr<CommitResult> committed = grpc_coordinator_->Commit(*txid);
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_TRUE(committed->committed) << committed->reason;
  }
  EXPECT_EQ(FramedEnlists(), 3);
  // One whose branches the Commit names: each agent enlists without
  // making its Execute wait, on a thread of its link.
  absl::StatusOr<Transaction> tx = grpc_coordinator_->BeginTransaction(absl::Seconds(30));
  ASSERT_TRUE(tx.ok()) << tx.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(tx->Execute(*grpc_agents_[i], {{"INSERT INTO t VALUES (3)", {}}}).ok());
  }
  absl::StatusOr<CommitResult> committed = tx->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  EXPECT_TRUE(Eventually([&] { return FramedEnlists() == 6; }, absl::Seconds(10)))
      << FramedEnlists();
  // The agents count an Enlist once they have read its answer, which
  // for those no Execute waits for may be after the Commit.
  auto answered = [&] {
    double sum = 0;
    for (int i = 0; i < 3; ++i) sum += AgentCounter(i, "txagent_framed_enlist_calls_total");
    return sum;
  };
  EXPECT_TRUE(Eventually([&] { return answered() == 6; }, absl::Seconds(10))) << answered();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(AgentCounter(i, "txagent_framed_enlist_fallbacks_total"), 0);
  }
}

// A coordinator restarted on another framed port: each agent's next
// Enlist finds the old one gone, goes over gRPC, and its answer names the
// new one, which the Enlists after it use; whether the Execute waits for
// its Enlist (sent on its thread) or not (sent on a thread of the link).
TEST_F(FramedPortTest, AnAgentEnlistsOverGrpcWhenTheCoordinatorsFramedPortMoved) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grpc_agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  auto transfer = [&](int n, bool named) {
    absl::StatusOr<Transaction> tx = BeginWhenReachable(*grpc_coordinator_);
    ASSERT_TRUE(tx.ok()) << tx.status();
    for (int i = 0; i < 3; ++i) {
      const std::string insert = absl::StrCat("INSERT INTO t VALUES (", n, ")");
      ASSERT_TRUE(named ? tx->Execute(*grpc_agents_[i], {{insert, {}}}).ok()
                        : grpc_agents_[i]->ExecuteOne(tx->txid(), insert).ok());
    }
    absl::StatusOr<CommitResult> committed =
        named ? tx->Commit() : grpc_coordinator_->Commit(tx->txid());
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_TRUE(committed->committed) << committed->reason;
  };
  auto fallbacks = [&] {
    double sum = 0;
    for (int i = 0; i < 3; ++i) sum += AgentCounter(i, "txagent_framed_enlist_fallbacks_total");
    return sum;
  };
  transfer(1, /*named=*/false);  // the agents learn the framed port
  int n = 1;
  for (bool named : {true, false}) {
    const std::string old_port = cluster_->coordinator_framed_address();
    cluster_->SetCoordinatorExtraFlags({"--framed_listen=127.0.0.1:0"});
    ASSERT_TRUE(cluster_->RestartCoordinator().ok());
    ASSERT_NE(cluster_->coordinator_framed_address(), old_port);
    const double before = fallbacks();
    transfer(++n, named);
    EXPECT_TRUE(Eventually([&] { return fallbacks() == before + 3; }, absl::Seconds(10)))
        << (named ? "named: " : "waited for: ") << fallbacks() - before;
    for (int i = 0; i < 3; ++i) {
      EXPECT_THAT(Contents(cluster_->agent_log(i)),
                  HasSubstr("the coordinator's framed port " + old_port + " failed"));
    }
    EXPECT_EQ(FramedEnlists(), 0);
    transfer(++n, named);
    EXPECT_TRUE(Eventually([&] { return FramedEnlists() == 3; }, absl::Seconds(10)))
        << FramedEnlists();
  }
}

// txcoord --framed_participants=false keeps every Participant call on gRPC.
TEST_F(FramedPortTest, ACoordinatorToldNotToUsesGrpcOnly) {
  cluster_->SetCoordinatorExtraFlags({"--framed_participants=false"});
  ASSERT_TRUE(cluster_->RestartCoordinator().ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grpc_agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  absl::StatusOr<Transaction> tx = BeginWhenReachable(*grpc_coordinator_);
  ASSERT_TRUE(tx.ok()) << tx.status();
  const std::string txid = tx->txid();
  ASSERT_TRUE(grpc_agents_[0]->ExecuteOne(txid, "INSERT INTO t VALUES (1)").ok());
  ASSERT_TRUE(grpc_agents_[1]->ExecuteOne(txid, "INSERT INTO t VALUES (1)").ok());
  absl::StatusOr<CommitResult> committed = grpc_coordinator_->Commit(txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  EXPECT_TRUE(RowsBecome(2));
  EXPECT_EQ(FramedCalls(0), 0);
  EXPECT_EQ(FramedCalls(1), 0);
  EXPECT_EQ(CoordinatorCounter("txcoord_framed_participant_calls_total"), -1)
      << "the framed transport's metrics exist only when it is used";
}

// An agent restarted on another framed port: the coordinator's phase 2
// finds the old one gone, sends the Commit over gRPC instead, and the
// agent's next enlistment names its new port.
TEST_F(FramedPortTest, AnAgentsOldFramedPortFallsBackToGrpcUntilItEnlistsAgain) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  absl::StatusOr<std::string> prepared = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  // Not named in the Commit: each Execute is answered once its enlistment,
  // with its vote and framed port, has reached the coordinator.
  ExecuteOptions prepare;
  prepare.prepare = true;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(agents_[i]->ExecuteOne(*prepared, "INSERT INTO t VALUES (1)", {}, prepare).ok());
  }
  const std::string old_port = cluster_->agent_framed_address(1);
  ASSERT_TRUE(cluster_->KillAgent(1).ok());
  cluster_->SetAgentExtraFlags(1, {"--framed_listen=127.0.0.1:0"});
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  ASSERT_NE(cluster_->agent_framed_address(1), old_port);
  absl::StatusOr<CommitResult> committed = coordinator_->Commit(*prepared);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  // The prepared branch survived the kill and is committed over gRPC.
  EXPECT_TRUE(RowsBecome(2));
  EXPECT_GE(CoordinatorCounter("txcoord_framed_participant_fallbacks_total"), 1);
  EXPECT_EQ(FramedCalls(1), 0);
  EXPECT_THAT(Contents(cluster_->coordinator_log()),
              HasSubstr("framed port " + old_port + " of the participant at " +
                        cluster_->agent_address(1) + " failed"));

  // The next transaction's enlistment names the new port.
  absl::StatusOr<std::string> txid = grpc_coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  ASSERT_TRUE(grpc_agents_[0]->ExecuteOne(*txid, "INSERT INTO t VALUES (2)").ok());
  ASSERT_TRUE(grpc_agents_[1]->ExecuteOne(*txid, "INSERT INTO t VALUES (2)").ok());
  committed = grpc_coordinator_->Commit(*txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed) << committed->reason;
  EXPECT_TRUE(Eventually([&] { return FramedCalls(1) == 2; }, absl::Seconds(10)))
      << "Prepare and Commit did not reach agent 1's new framed port: " << FramedCalls(1);
}

// One round may mix agents called on their framed ports with one called
// over gRPC, and failures in either; a round dropped unread leaves the
// connections it used closed, not out of step.
TEST_F(FramedPortTest, ARoundMixesFramedAndGrpcCallsAndTheirErrors) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(agents_[i]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  {
    ExecuteRound round;
    round.Start(*agents_[0], "", {{"INSERT INTO t VALUES (1)", {}}}, {});
    round.Start(*grpc_agents_[1], "", {{"INSERT INTO t VALUES (1)", {}}}, {});
    round.Start(*agents_[2], "", {{"INSERT INTO no_such_table VALUES (1)", {}}}, {});
    std::vector<absl::StatusOr<ExecuteResult>> results = round.Wait();
    ASSERT_EQ(results.size(), 3u);
    EXPECT_TRUE(results[0].ok()) << results[0].status();
    EXPECT_TRUE(results[1].ok()) << results[1].status();
    EXPECT_EQ(results[2].status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(results[2].status().message(), HasSubstr("no_such_table"));
  }
  // Agent 1's insert went over gRPC; agent 2's failing one was framed.
  EXPECT_EQ(FramedCalls(1), 1);
  EXPECT_EQ(FramedCalls(2), 2);
  {
    ExecuteRound dropped;
    dropped.Start(*agents_[0], "", {{"SELECT 1", {}}}, {});
    dropped.Start(*grpc_agents_[1], "", {{"SELECT 1", {}}}, {});
  }
  // The next call on agent 0 gets its own answer, not the dropped one's.
  absl::StatusOr<SqlResult> next = agents_[0]->ExecuteOne("", "SELECT 2");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(std::get<int64_t>(next->rows.at(0).at(0)), 2);
}

TEST_F(FramedPortTest, ARestartedAgentIsFoundAgainWithoutAFailedCall) {
  const std::string framed_address = cluster_->agent_framed_address(0);
  ASSERT_TRUE(agents_[0]->ExecuteOne("", "SELECT 1").ok());
  ASSERT_TRUE(cluster_->RestartAgent(0).ok());
  ASSERT_EQ(cluster_->agent_framed_address(0), framed_address);
  // The connection from before the restart is closed; the call takes a new one.
  absl::StatusOr<SqlResult> after = agents_[0]->ExecuteOne("", "SELECT 2");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(std::get<int64_t>(after->rows.at(0).at(0)), 2);
  EXPECT_EQ(FramedCalls(0), 1) << "the call after the restart did not go to the framed port";
}

// SIGTERM: the agent takes no new framed calls, answers the one it runs
// (here one waiting for a row lock), ends idle connections without waiting
// out its grace period, and exits 0.
TEST_F(FramedPortTest, AStopAnswersTheRunningCallAndTakesNoNewOnes) {
  ASSERT_TRUE(
      agents_[1]->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)").ok());
  ASSERT_TRUE(agents_[1]->ExecuteOne("", "INSERT INTO t VALUES (1, 0)").ok());
  absl::StatusOr<std::string> holder = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(grpc_agents_[1]->ExecuteOne(*holder, "UPDATE t SET v = 1 WHERE id = 1").ok());
  absl::StatusOr<std::string> waiter = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(waiter.ok()) << waiter.status();

  // An idle connection in the pool of another client.
  AgentClientOptions options;
  options.framed_address = cluster_->agent_framed_address(1);
  AgentClient idle(cluster_->agent_address(1), options);
  ASSERT_TRUE(idle.ExecuteOne("", "SELECT 1").ok());

  const double calls_before = FramedCalls(1);
  absl::StatusOr<SqlResult> waited;
  std::atomic<bool> answered{false};
  std::thread blocked([&] {
    ExecuteOptions wait;
    wait.lock_timeout = absl::Seconds(3);
    waited = agents_[1]->ExecuteOne(*waiter, "UPDATE t SET v = 2 WHERE id = 1", {}, wait);
    answered = true;
  });
  // The agent has read the call: it waits for the lock now.
  EXPECT_TRUE(Eventually([&] { return FramedCalls(1) > calls_before; }, absl::Seconds(10)));
  ASSERT_TRUE(cluster_->agent(1)->Signal(SIGTERM).ok());

  // New calls are refused once the stop has begun, while the waiting one runs.
  options.wait_for_ready = false;
  options.call_timeout = absl::Milliseconds(500);
  EXPECT_TRUE(Eventually(
      [&] {
        AgentClient late(cluster_->agent_address(1), options);
        return absl::IsUnavailable(late.ExecuteOne("", "SELECT 1").status());
      },
      absl::Seconds(10)));
  EXPECT_FALSE(answered.load()) << "new calls were served until the running one ended";
  blocked.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kAborted) << waited.status();
  absl::StatusOr<ExitStatus> exit = cluster_->agent(1)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->Clean()) << exit->ToString();

  const std::string log = Contents(cluster_->agent_log(1));
  EXPECT_THAT(log, HasSubstr("framed port on 127.0.0.1:"));
  EXPECT_THAT(log, Not(HasSubstr("still running after")));
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  EXPECT_TRUE(coordinator_->Abort(*holder).ok());
}

}  // namespace
}  // namespace txcoord::testing
