// Cluster mode against a real etcd and real daemons (docs/cluster.md): three
// coordinators and three agents registered in etcd, clients balancing
// Begins by policy and routing every other call to the txid's owner, a
// coordinator killed with kill -9 under load, and etcd stopped for 30 s.
#include "harness/cluster.h"

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "cluster/coordinator_directory.h"
#include "cluster/registry_connection.h"
#include "common/txid.h"
#include "gtest/gtest.h"
#include "harness/audit.h"
#include "harness/bank.h"
#include "harness/etcd_server.h"
#include "harness/temp_dir.h"
#include "httplib.h"
#include "tests/cluster/cluster_workload.h"
#include "tests/operators/txctl_runner.h"

namespace txcoord::testing {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(2);
const std::vector<std::string> kCoordinatorIds = {"c1", "c2", "c3"};
const std::vector<int> kWeights = {1, 2, 3};
const std::vector<std::string> kAgents = {"bank-a", "bank-b", "bank-c"};

std::string OwnerOf(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  return parsed.ok() ? parsed->cluster : "?";
}

class ClusterModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("cluster-mode");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    EtcdServerOptions etcd_options;
    etcd_options.dir = dir_->path() + "/etcd";
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create(etcd_options);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    registry_url_ = absl::StrCat("etcd://", etcd_->endpoint());

    ClusterOptions options;
    options.dir = dir_->path() + "/daemons";
    options.coordinators = 3;
    options.coordinator_ids = kCoordinatorIds;
    for (int weight : kWeights) {
      options.per_coordinator_flags.push_back(
          {"--registry=" + registry_url_, absl::StrCat("--registry_weight=", weight),
           absl::StrCat("--registry_ttl=", absl::FormatDuration(kTtl))});
    }
    options.http = true;
    options.agents = 3;
    options.agent_names = kAgents;
    // As in the crash tests: a branch whose coordinator died before it
    // heard of it is rolled back after 2 s idle instead of a minute.
    options.agent_flags = {"--registry=" + registry_url_,
                           absl::StrCat("--registry_ttl=", absl::FormatDuration(kTtl)),
                           "--lock_timeout=500ms", "--branch_idle_timeout=2s"};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);

    cluster::RegistryOptions registry;
    registry.url = registry_url_;
    absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> connection =
        cluster::RegistryConnection::Open(registry);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = *std::move(connection);
    absl::StatusOr<cluster::Discovery*> discovery = connection_->StartDiscovery();
    ASSERT_TRUE(discovery.ok()) << discovery.status();
    discovery_ = *discovery;
    // The daemons register once they listen: wait until all six are seen.
    ASSERT_TRUE(Eventually([&] { return discovery_->All().size() == 6; }, absl::Seconds(10)))
        << discovery_->All().size() << " nodes registered";
  }

  void TearDown() override {
    if (HasFailure() && dir_.has_value()) {
      dir_->Keep();
      std::fprintf(stderr, "data and logs kept in %s\n", dir_->path().c_str());
    }
  }

  std::shared_ptr<cluster::RegistryCoordinatorDirectory> Directory(cluster::BalancePolicy policy) {
    return std::make_shared<cluster::RegistryCoordinatorDirectory>(
        discovery_, cluster::kDefaultCoordinatorService, policy);
  }

  // `count` Begins from 4 threads; how many each coordinator issued.
  std::map<std::string, int> Begins(Client& client, int count) {
    std::atomic<int> next{0};
    absl::Mutex mu;
    std::map<std::string, int> by_owner;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        std::map<std::string, int> mine;
        while (next.fetch_add(1) < count) {
          absl::StatusOr<std::string> txid = client.Begin(absl::Seconds(2));
          ++mine[txid.ok() ? OwnerOf(*txid) : txid.status().ToString()];
        }
        absl::MutexLock lock(&mu);
        for (const auto& [owner, n] : mine) by_owner[owner] += n;
      });
    }
    for (std::thread& thread : threads) thread.join();
    return by_owner;
  }

  // Agent clients found by service name through the registry.
  std::vector<std::unique_ptr<AgentClient>> AgentsByName() {
    std::vector<std::unique_ptr<AgentClient>> agents;
    for (const std::string& name : kAgents) {
      absl::StatusOr<std::vector<cluster::NodeRecord>> found = discovery_->Agents(name);
      EXPECT_TRUE(found.ok()) << found.status();
      if (!found.ok()) return {};
      agents.push_back(std::make_unique<AgentClient>(found->front().endpoint));
    }
    return agents;
  }

  // A bank over the three agents found by name, its accounts created, with
  // a ledger for the audit. Null (and a test failure) if that fails.
  std::unique_ptr<Bank> MakeBank(Client* client,
                                 absl::Duration tx_timeout = BankOptions().tx_timeout) {
    agents_ = AgentsByName();
    if (agents_.size() != 3) return nullptr;
    BankOptions options;
    options.accounts = 100;
    options.ledger = true;
    options.tx_timeout = tx_timeout;
    auto bank = std::make_unique<Bank>(
        client, std::vector<AgentClient*>{agents_[0].get(), agents_[1].get(), agents_[2].get()},
        options);
    absl::Status created = bank->CreateAccounts();
    EXPECT_TRUE(created.ok()) << created;
    return created.ok() ? std::move(bank) : nullptr;
  }

  // Bank::AwaitPhase2 (whose barrier runs again after UNAVAILABLE).
  static absl::Status AwaitPhase2(Bank& bank) { return bank.AwaitPhase2(absl::Seconds(60)); }

  std::optional<TempDir> dir_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
  std::unique_ptr<EtcdServer> etcd_;
  std::string registry_url_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<cluster::RegistryConnection> connection_;
  cluster::Discovery* discovery_ = nullptr;
};

TEST_F(ClusterModeTest, BeginsAreBalancedByPolicy) {
  constexpr int kBegins = 30000;
  {
    Client client(Directory(cluster::BalancePolicy::kWeighted));
    std::map<std::string, int> by_owner = Begins(client, kBegins);
    for (size_t i = 0; i < kCoordinatorIds.size(); ++i) {
      const double share = static_cast<double>(by_owner[kCoordinatorIds[i]]) / kBegins;
      EXPECT_NEAR(share, kWeights[i] / 6.0, 0.02)
          << "weighted: " << kCoordinatorIds[i] << " issued " << by_owner[kCoordinatorIds[i]];
    }
    EXPECT_EQ(by_owner.size(), 3u) << "errors or strangers among the Begins";
    std::printf("weighted 1:2:3: c1 %d, c2 %d, c3 %d\n", by_owner["c1"], by_owner["c2"],
                by_owner["c3"]);
  }
  {
    Client client(Directory(cluster::BalancePolicy::kRoundRobin));
    std::map<std::string, int> by_owner = Begins(client, kBegins);
    for (const std::string& id : kCoordinatorIds) {
      EXPECT_EQ(by_owner[id], kBegins / 3) << "round_robin: " << id;
    }
    std::printf("round_robin: c1 %d, c2 %d, c3 %d\n", by_owner["c1"], by_owner["c2"],
                by_owner["c3"]);
  }
  {
    Client client(Directory(cluster::BalancePolicy::kRandom));
    std::map<std::string, int> by_owner = Begins(client, kBegins);
    // Binomial(30000, 1/3): sd 81.6; five of them either way.
    for (const std::string& id : kCoordinatorIds) {
      EXPECT_NEAR(by_owner[id], kBegins / 3.0, 5 * std::sqrt(kBegins / 3.0 * 2 / 3))
          << "random: " << id;
    }
    std::printf("random: c1 %d, c2 %d, c3 %d\n", by_owner["c1"], by_owner["c2"], by_owner["c3"]);
  }
}

TEST_F(ClusterModeTest, EveryCallForATxidGoesToItsOwner) {
  Client client(Directory(cluster::BalancePolicy::kRoundRobin));
  std::unique_ptr<Bank> made = MakeBank(&client);
  ASSERT_NE(made, nullptr);
  Bank& bank = *made;
  std::map<std::string, int> committed_by_owner;
  std::vector<TransferResult> results;
  {
    Workload workload(&bank, 6);
    ASSERT_TRUE(Eventually([&] { return workload.size() >= 600; }, absl::Seconds(60)));
    workload.Stop();
    results = workload.results();
  }
  for (const TransferResult& result : results) {
    // A call that reached another coordinator fails with "belongs to
    // coordinator ...": an abort the balance check did not cause.
    EXPECT_TRUE(result.outcome == TransferOutcome::kCommitted ||
                result.outcome == TransferOutcome::kBalanceCheck ||
                result.outcome == TransferOutcome::kLockConflict)
        << result.txid << ": " << TransferOutcomeName(result.outcome) << " " << result.detail;
    if (result.outcome == TransferOutcome::kCommitted) ++committed_by_owner[OwnerOf(result.txid)];
  }
  for (const std::string& id : kCoordinatorIds) {
    EXPECT_GT(committed_by_owner[id], 0) << id << " committed nothing";
  }
  absl::Status finished = bank.AwaitPhase2(absl::Seconds(30));
  ASSERT_TRUE(finished.ok()) << finished;
  absl::StatusOr<AuditReport> audit = Audit(cluster_->agent_dbs(), Told(results));
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->Atomic()) << audit->ToString();
  EXPECT_EQ(audit->money, bank.TotalMoney());
}

TEST_F(ClusterModeTest, HttpCallsOnAnotherCoordinatorsTxidAreRedirectedToItsOwner) {
  Client client(Directory(cluster::BalancePolicy::kRoundRobin));
  std::string txid;
  for (int i = 0; i < 3 && OwnerOf(txid) != "c2"; ++i) {
    absl::StatusOr<std::string> begun = client.Begin(absl::Seconds(30));
    ASSERT_TRUE(begun.ok()) << begun.status();
    txid = *begun;
  }
  ASSERT_EQ(OwnerOf(txid), "c2");
  const std::pair<std::string, std::string> c1 =
      absl::StrSplit(cluster_->coordinator_http_address(0), ':');
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(c1.second, &port));
  httplib::Client http(c1.first, port);
  // c1 does not own it: 307 to c2's HTTP port, same path.
  httplib::Result moved = http.Get(("/v1/transactions/" + txid).c_str());
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->status, 307) << moved->body;
  EXPECT_EQ(
      moved->get_header_value("Location"),
      absl::StrCat("http://", cluster_->coordinator_http_address(1), "/v1/transactions/", txid));
  // A client that follows redirects gets c2's answer, also for a POST.
  http.set_follow_location(true);
  httplib::Result shown = http.Get(("/v1/transactions/" + txid).c_str());
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->status, 200) << shown->body;
  EXPECT_NE(shown->body.find(txid), std::string::npos) << shown->body;
  httplib::Result aborted =
      http.Post(("/v1/transactions/" + txid + "/abort").c_str(), "{}", "application/json");
  ASSERT_TRUE(aborted);
  EXPECT_EQ(aborted->status, 200) << aborted->body;
  absl::StatusOr<v1::Transaction> state = client.GetTransaction(txid);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->state(), v1::TX_STATE_ABORTED);
  // Its own txids c1 answers itself.
  absl::StatusOr<std::string> own = client.Begin(absl::Seconds(30));
  for (int i = 0; i < 3 && own.ok() && OwnerOf(*own) != "c1"; ++i) own = client.Begin();
  ASSERT_TRUE(own.ok());
  http.set_follow_location(false);
  httplib::Result here = http.Get(("/v1/transactions/" + *own).c_str());
  ASSERT_TRUE(here);
  EXPECT_EQ(here->status, 200) << here->body;
}

TEST_F(ClusterModeTest, TxctlFindsDaemonsThroughTheRegistry) {
  const std::string registry = "--registry=" + registry_url_;
  TxctlResult nodes = RunTxctl({"nodes", registry, "--json"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes;
  for (const std::string& id : kCoordinatorIds) {
    EXPECT_NE(nodes.out.find("\"node_id\":\"" + id + "\""), std::string::npos) << nodes.out;
  }
  for (const std::string& name : kAgents) {
    EXPECT_NE(nodes.out.find("\"service\":\"" + name + "\""), std::string::npos) << nodes.out;
  }

  // A transaction of c2, still open.
  Client client(Directory(cluster::BalancePolicy::kRoundRobin));
  std::string txid;
  for (int i = 0; i < 3 && OwnerOf(txid) != "c2"; ++i) {
    absl::StatusOr<std::string> begun = client.Begin(absl::Seconds(60));
    ASSERT_TRUE(begun.ok()) << begun.status();
    txid = *begun;
  }
  ASSERT_EQ(OwnerOf(txid), "c2");
  // Asked at c1 by address, it is refused; through the registry it reaches c2.
  TxctlResult wrong = RunTxctl({"show", txid, "--coordinator=" + cluster_->coordinator_address(0)});
  EXPECT_EQ(wrong.exit_code, 3) << wrong;
  TxctlResult shown = RunTxctl({"show", txid, registry, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown;
  EXPECT_NE(shown.out.find(txid), std::string::npos) << shown.out;
  // list asks every coordinator.
  TxctlResult listed = RunTxctl({"list", registry});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  for (const std::string& id : kCoordinatorIds) {
    EXPECT_NE(listed.out.find("== coordinator " + id), std::string::npos) << listed.out;
  }
  EXPECT_NE(listed.out.find(txid), std::string::npos) << listed.out;
  // An agent by its service name.
  TxctlResult in_doubt = RunTxctl({"in-doubt", registry, "--service=bank-b", "--json"});
  EXPECT_EQ(in_doubt.exit_code, 0) << in_doubt;
  EXPECT_NE(in_doubt.out.find("bank-b"), std::string::npos) << in_doubt.out;

  // Errors: an owner nobody registered, --service without a registry, an
  // etcd that does not answer.
  TxctlResult stranger = RunTxctl({"show", "c9.1.1", registry});
  EXPECT_EQ(stranger.exit_code, 2) << stranger;
  EXPECT_NE(stranger.err.find("\"c9\""), std::string::npos) << stranger;
  TxctlResult usage = RunTxctl({"in-doubt", "--service=bank-b"});
  EXPECT_EQ(usage.exit_code, 1) << usage;
  ASSERT_TRUE(etcd_->Stop().ok());
  TxctlResult away = RunTxctl({"nodes", registry, "--timeout=1s"});
  EXPECT_EQ(away.exit_code, 4) << away;
  EXPECT_NE(away.err.find(etcd_->endpoint()), std::string::npos) << away;
}

TEST_F(ClusterModeTest, AKilledCoordinatorGetsNoBeginsAndItsTransfersSettleOnRestart) {
  auto directory = Directory(cluster::BalancePolicy::kWeighted);
  ClientOptions client_options;
  client_options.settle_timeout = absl::Seconds(30);
  Client client(directory, client_options);
  std::unique_ptr<Bank> made = MakeBank(&client, absl::Seconds(10));
  ASSERT_NE(made, nullptr);
  Bank& bank = *made;

  // Threads whose transfer c3 owned wait in Commit until it is back; the
  // others must go on.
  Workload workload(&bank, 12);
  ASSERT_TRUE(Eventually([&] { return workload.committed_since(0) >= 50; }, absl::Seconds(30)));
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(cluster_->KillCoordinator(2).ok());  // c3, the heaviest
  // Its record goes when its lease expires; from then on no client picks it.
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<cluster::NodeRecord>> live =
            discovery_->Coordinators(cluster::kDefaultCoordinatorService);
        return live.ok() && live->size() == 2;
      },
      kTtl + absl::Seconds(3)));
  const absl::Duration gone_after = absl::Now() - killed;
  EXPECT_LE(gone_after, kTtl + absl::Seconds(1)) << "c3 still registered after the lease TTL";
  const int64_t picks_when_gone = directory->picks("c3");
  const size_t results_when_gone = workload.size();
  ASSERT_TRUE(Eventually([&] { return workload.committed_since(results_when_gone) >= 50; },
                         absl::Seconds(30)))
      << "transfers stopped while c3 was down";
  EXPECT_EQ(directory->picks("c3"), picks_when_gone) << "Begins went to the dead coordinator";

  // Back on the same data and port: its committed transfers finish, its
  // undecided ones abort, and nothing stays prepared.
  ASSERT_TRUE(cluster_->StartCoordinator(2).ok());
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<cluster::NodeRecord>> live =
            discovery_->Coordinators(cluster::kDefaultCoordinatorService);
        return live.ok() && live->size() == 3;
      },
      absl::Seconds(10)));
  const size_t results_when_back = workload.size();
  ASSERT_TRUE(Eventually([&] { return workload.committed_since(results_when_back) >= 30; },
                         absl::Seconds(30)));
  workload.Stop();
  absl::Status finished = AwaitPhase2(bank);
  ASSERT_TRUE(finished.ok()) << finished;
  const std::vector<TransferResult> results = workload.results();
  int unknown = 0;
  for (const TransferResult& result : results) {
    if (result.outcome == TransferOutcome::kUnknown) ++unknown;
    if (result.outcome == TransferOutcome::kAborted ||
        result.outcome == TransferOutcome::kUnknown) {
      EXPECT_FALSE(result.detail.empty()) << result.txid << ": an error without a message";
    }
  }
  absl::StatusOr<AuditReport> audit = Audit(cluster_->agent_dbs(), Told(results));
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->Atomic()) << audit->ToString();
  EXPECT_EQ(audit->prepared, 0) << audit->ToString();
  EXPECT_EQ(audit->money, bank.TotalMoney());
  ASSERT_TRUE(cluster_->CheckRunning().ok());
  std::printf(
      "kill -9 of c3: gone from the registry after %s; %zu transfers, %d unknown to "
      "their client\n",
      absl::FormatDuration(gone_after).c_str(), results.size(), unknown);
}

TEST_F(ClusterModeTest, TransactionsGoOnWhileEtcdIsDownAndRegistrationsComeBack) {
  Client client(Directory(cluster::BalancePolicy::kRoundRobin));
  std::unique_ptr<Bank> made = MakeBank(&client);
  ASSERT_NE(made, nullptr);
  Bank& bank = *made;
  Workload workload(&bank, 4);
  ASSERT_TRUE(Eventually([&] { return workload.committed_since(0) >= 30; }, absl::Seconds(30)));

  ASSERT_TRUE(etcd_->Stop().ok());
  const absl::Time stopped = absl::Now();
  ASSERT_TRUE(Eventually([&] { return !discovery_->watching(); }, absl::Seconds(10)));
  // The cached view serves: Begins and every other call go on.
  const size_t results_at_stop = workload.size();
  ASSERT_TRUE(
      Eventually([&] { return absl::Now() - stopped >= absl::Seconds(30); }, absl::Seconds(31)));
  EXPECT_GE(workload.committed_since(results_at_stop), 30)
      << "transfers stalled while etcd was down";
  // Meanwhile a new client cannot read the registry, and says where it looked.
  cluster::RegistryOptions registry;
  registry.url = registry_url_;
  auto lonely = cluster::RegistryConnection::Open(registry);
  ASSERT_TRUE(lonely.ok());
  absl::StatusOr<cluster::Discovery*> cannot = (*lonely)->StartDiscovery();
  ASSERT_FALSE(cannot.ok());
  EXPECT_NE(cannot.status().message().find(etcd_->endpoint()), std::string::npos)
      << cannot.status();

  ASSERT_TRUE(etcd_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return discovery_->watching(); }, absl::Seconds(15)))
      << "the watch did not come back";
  ASSERT_TRUE(Eventually([&] { return discovery_->All().size() == 6; }, absl::Seconds(15)))
      << "registrations did not come back: " << discovery_->All().size();
  // The watch is live again: a coordinator stopped cleanly leaves the view.
  ASSERT_TRUE(cluster_->StopCoordinator(0).ok());
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<cluster::NodeRecord>> live =
            discovery_->Coordinators(cluster::kDefaultCoordinatorService);
        return live.ok() && live->size() == 2;
      },
      absl::Seconds(5)));
  ASSERT_TRUE(cluster_->StartCoordinator(0).ok());
  workload.Stop();
  absl::Status finished = AwaitPhase2(bank);
  ASSERT_TRUE(finished.ok()) << finished;
  absl::StatusOr<AuditReport> audit = Audit(cluster_->agent_dbs(), Told(workload.results()));
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->Atomic()) << audit->ToString();
  EXPECT_EQ(audit->prepared, 0) << audit->ToString();
}

}  // namespace
}  // namespace txcoord::testing
