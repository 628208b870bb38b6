// Process chaos: the bank workload runs against the real coordinator and
// three agents while a random one of them is killed with SIGKILL at random
// points of the workload and restarted at once. At the end the database
// files must show every transfer all-or-nothing, every acknowledged commit
// present, every acknowledged abort absent, money conserved and nothing
// prepared, and no daemon may have logged an error.
//
// Defaults keep it inside the CI budget; for a longer run:
//   TXCOORD_CHAOS_TRANSFERS=20000 TXCOORD_CHAOS_KILLS=300 build/tests/chaos/chaos_test
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "harness/audit.h"
#include "harness/bank.h"
#include "harness/cluster.h"
#include "harness/progress.h"

namespace txcoord::testing {
namespace {

// Lines at ERROR or FATAL level in a daemon's log.
std::vector<std::string> ErrorLines(const std::string& path) {
  std::vector<std::string> errors;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (absl::StrContains(line, " ERROR ") || absl::StrContains(line, " FATAL ") ||
        absl::StrContains(line, "Sanitizer")) {
      errors.push_back(line);
    }
  }
  return errors;
}

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.agents = 3;
    options.cluster_id = "chaos";
    options.coordinator_flags = {"--phase2_retry_max=200ms", "--prepare_timeout=2s"};
    options.agent_flags = {"--lock_timeout=500ms", "--branch_idle_timeout=2s"};
    // Agents 0 and 2 are called on their framed ports, agent 1 over gRPC,
    // and Commit goes to the coordinator's framed port: kills cut both
    // kinds of connection mid-call.
    options.agent_framed_port = true;
    options.coordinator_framed_port = true;
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    Connect();
    ASSERT_TRUE(bank_->CreateAccounts().ok());
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    bank_.reset();
    agents_.clear();
    client_.reset();
    EXPECT_TRUE(cluster_->StopAll().ok());
    if (HasFailure()) {
      cluster_->KeepDir();
      std::cerr << "cluster data and daemon logs kept in " << cluster_->dir() << "\n";
    }
  }

  // Clients behave like a service's: a call waits (briefly) for a daemon
  // that is restarting instead of failing at once; a call in flight when its
  // daemon dies fails.
  void Connect() {
    bank_.reset();
    agents_.clear();
    ClientOptions client_options;
    client_options.wait_for_ready = true;
    client_options.call_timeout = absl::Seconds(3);
    client_options.commit_timeout = absl::Seconds(5);
    // The suite counts unknown outcomes itself: one Commit call each.
    client_options.settle_timeout = absl::ZeroDuration();
    client_options.framed_address = cluster_->coordinator_framed_address();
    client_ = std::make_unique<Client>(cluster_->coordinator_address(), client_options);
    AgentClientOptions agent_options;
    agent_options.wait_for_ready = true;
    agent_options.call_timeout = absl::Seconds(3);
    std::vector<AgentClient*> agents;
    for (int i = 0; i < cluster_->agent_count(); ++i) {
      agent_options.framed_address = i == 1 ? "" : cluster_->agent_framed_address(i);
      agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i), agent_options));
      agents.push_back(agents_.back().get());
    }
    BankOptions bank;
    bank.accounts = 200;
    bank.max_amount = 1200;
    bank.ledger = true;
    bank.hot_accounts = 10;  // some lock conflicts
    bank.hot_share = 0.1;
    bank.tx_timeout = absl::Seconds(10);
    bank.lock_timeout = absl::Milliseconds(500);
    bank.name_branches = 0.5;  // half the transfers name their branches in Commit
    bank_ = std::make_unique<Bank>(client_.get(), agents, bank);
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> client_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
  std::unique_ptr<Bank> bank_;
};

TEST_F(ChaosTest, RandomKillsNeverBreakAtomicity) {
  const int kTransfers = EnvInt("TXCOORD_CHAOS_TRANSFERS", 1000);
  const int kKills = EnvInt("TXCOORD_CHAOS_KILLS", 15);

  absl::Mutex mu;
  Progress progress;  // finished, for the kills' timing
  std::map<std::string, TransferOutcome> told;
  std::map<TransferOutcome, int> counts;
  std::atomic<bool> stop{false};

  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      absl::BitGen rng;
      while (!stop.load()) {
        TransferResult r = bank_->Transfer(rng);
        absl::MutexLock lock(&mu);
        if (!r.txid.empty()) told[r.txid] = r.outcome;
        ++counts[r.outcome];
        progress.Finished();
      }
    });
  }

  // Kills land at random points of the workload: after a random number of
  // finished transfers, not after a delay.
  absl::BitGen rng;
  const int spacing = std::max(1, kTransfers / kKills);
  std::map<std::string, int> kills;
  for (int k = 0; k < kKills; ++k) {
    const int at = k * spacing + absl::Uniform(rng, 0, spacing);
    progress.AwaitAtLeast(at);
    const int victim = absl::Uniform(rng, -1, cluster_->agent_count());
    if (victim < 0) {
      ASSERT_TRUE(cluster_->KillCoordinator().ok());
      ASSERT_TRUE(cluster_->StartCoordinator().ok());
      ++kills["coordinator"];
    } else {
      ASSERT_TRUE(cluster_->KillAgent(victim).ok());
      ASSERT_TRUE(cluster_->StartAgent(victim).ok());
      ++kills[cluster_->agent_name(victim)];
    }
  }
  progress.AwaitAtLeast(kTransfers);
  stop = true;
  for (std::thread& t : clients) t.join();

  absl::Status settled = bank_->AwaitPhase2(absl::Seconds(60));
  ASSERT_TRUE(settled.ok()) << settled;
  ASSERT_TRUE(cluster_->CheckRunning().ok()) << cluster_->CheckRunning();

  absl::StatusOr<AuditReport> audit = Audit(cluster_->agent_dbs(), told);
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->Atomic()) << audit->ToString();
  EXPECT_EQ(audit->prepared, 0) << audit->ToString();
  EXPECT_EQ(audit->money, bank_->TotalMoney()) << audit->ToString();

  std::vector<std::string> logs = {cluster_->coordinator_log()};
  for (int i = 0; i < cluster_->agent_count(); ++i) logs.push_back(cluster_->agent_log(i));
  for (const std::string& log : logs) {
    for (const std::string& line : ErrorLines(log)) ADD_FAILURE() << log << ": " << line;
  }

  std::string summary;
  for (const auto& [outcome, n] : counts)
    absl::StrAppend(&summary, TransferOutcomeName(outcome), "=", n, " ");
  std::string killed;
  for (const auto& [who, n] : kills) absl::StrAppend(&killed, who, "=", n, " ");
  std::cout << "chaos: " << progress.done() << " transfers (" << summary << "), kills: " << killed
            << "| " << audit->ToString() << "\n";
  EXPECT_GE(progress.done(), kTransfers);
}

}  // namespace
}  // namespace txcoord::testing
