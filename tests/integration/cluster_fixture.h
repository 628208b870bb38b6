// A GoogleTest fixture running a real cluster (one txcoord, three txagents)
// per test, with a Client and an AgentClient per agent. On failure the
// cluster's directory (databases, WAL, daemon logs) is kept and named.
#ifndef TXCOORD_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
#define TXCOORD_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "harness/bank.h"
#include "harness/cluster.h"

namespace txcoord::testing {

// A raw channel whose message limits are far above the daemons' own, so
// that a test can send an oversized request and see the daemon refuse it.
inline std::shared_ptr<grpc::Channel> LargeMessageChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// Once phase 2 has settled, the agents' files hold all the bank's money and
// no prepared branch.
inline void ExpectSettledAndConserved(Bank& bank, Cluster& cluster) {
  absl::Status phase2 = bank.AwaitPhase2(absl::Seconds(30));
  ASSERT_TRUE(phase2.ok()) << phase2;
  absl::StatusOr<int64_t> after = Bank::SumBalances(cluster.agent_dbs());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, bank.TotalMoney());
  absl::StatusOr<int64_t> prepared = Bank::CountPrepared(cluster.agent_dbs());
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(*prepared, 0);
}

// What `threads` clients running `each` bank transfers apiece were told.
struct TransferTally {
  int committed = 0;
  std::map<TransferOutcome, int> counts;  // every outcome
  // Transfers aborted or of unknown outcome, which a healthy cluster never
  // gives (only money and locks end a transfer there), described.
  std::vector<std::string> unexpected;
};
inline TransferTally RunTransfers(Bank& bank, int threads, int each) {
  absl::Mutex mu;
  TransferTally tally;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      absl::BitGen rng;
      for (int i = 0; i < each; ++i) {
        TransferResult result = bank.Transfer(rng);
        absl::MutexLock lock(&mu);
        ++tally.counts[result.outcome];
        if (result.outcome == TransferOutcome::kCommitted) ++tally.committed;
        if (result.outcome == TransferOutcome::kAborted ||
            result.outcome == TransferOutcome::kUnknown) {
          tally.unexpected.push_back(absl::StrCat(TransferOutcomeName(result.outcome), " ",
                                                  result.txid, ": ", result.detail));
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  return tally;
}

class ClusterFixture : public ::testing::Test {
 protected:
  // Override to change the cluster (called from SetUp).
  virtual ClusterOptions Options() {
    ClusterOptions options;
    options.agents = 3;
    options.cluster_id = "it";
    return options;
  }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(Options());
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    coordinator_ = std::make_unique<Client>(cluster_->coordinator_address());
    for (int i = 0; i < cluster_->agent_count(); ++i) {
      owned_agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
      agents_.push_back(owned_agents_.back().get());
    }
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    // Connections first: a daemon shutting down waits (up to its grace
    // period) for open client connections to close.
    agents_.clear();
    owned_agents_.clear();
    coordinator_.reset();
    // Every test must leave the daemons alive and able to shut down cleanly.
    EXPECT_TRUE(cluster_->CheckRunning().ok()) << cluster_->CheckRunning();
    absl::Status stopped = cluster_->StopAll();
    EXPECT_TRUE(stopped.ok()) << stopped;
    if (HasFailure()) {
      cluster_->KeepDir();
      std::cerr << "cluster data and daemon logs kept in " << cluster_->dir() << "\n";
    }
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> coordinator_;
  std::vector<std::unique_ptr<AgentClient>> owned_agents_;
  std::vector<AgentClient*> agents_;  // agents_[i] talks to cluster_->agent(i)
};

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
