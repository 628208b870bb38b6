// Failover on etcd (docs/ha.md) against real daemons: a three-member etcd,
// the coordinator that owns txid space c1 with two standbys for it, three
// agents and a bank workload on concurrent clients. The owner is killed
// with kill -9, or paused with SIGSTOP past its lease and then resumed, ten
// times; each time a standby takes the space over and drives its
// transactions, and a resumed old owner finds its writes refused and stops.
// Afterwards money is conserved, every transfer is all-or-nothing at the
// agents as its client was told, and nothing is left prepared.
#include <signal.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "cluster/coordinator_directory.h"
#include "cluster/registry_connection.h"
#include "gtest/gtest.h"
#include "harness/audit.h"
#include "harness/bank.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/daemon_process.h"
#include "harness/etcd_server.h"
#include "harness/temp_dir.h"
#include "tests/cluster/cluster_workload.h"

namespace txcoord::testing {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(2);
constexpr char kSpace[] = "c1";
constexpr int kRounds = 10;
const std::vector<std::string> kAgents = {"bank-a", "bank-b", "bank-c"};

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("failover");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    EtcdServerOptions etcd_options;
    etcd_options.members = 3;
    etcd_options.dir = dir_->path() + "/etcd";
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create(etcd_options);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    const std::string registry = "--registry=" + etcd_->registry_url();
    const std::string ttl = absl::StrCat("--registry_ttl=", absl::FormatDuration(kTtl));
    coordinator_flags_ = {"--log=etcd", registry, ttl};

    ClusterOptions options;
    options.dir = dir_->path() + "/daemons";
    options.coordinators = 1;
    options.coordinator_ids = {kSpace};
    options.per_coordinator_flags = {coordinator_flags_};
    options.agents = 3;
    options.agent_names = kAgents;
    // A branch whose coordinator died before it heard of it is rolled back
    // after 2 s idle instead of a minute.
    options.agent_flags = {registry, ttl, "--lock_timeout=500ms", "--branch_idle_timeout=2s"};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);

    cluster::RegistryOptions registry_options;
    registry_options.url = etcd_->registry_url();
    absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> connection =
        cluster::RegistryConnection::Open(registry_options);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = *std::move(connection);
    absl::StatusOr<cluster::Discovery*> discovery = connection_->StartDiscovery();
    ASSERT_TRUE(discovery.ok()) << discovery.status();
    discovery_ = *discovery;
    ASSERT_TRUE(Eventually([&] { return discovery_->All().size() == 4; }, absl::Seconds(10)))
        << discovery_->All().size() << " nodes registered";
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(StartStandby().ok());
  }

  void TearDown() override {
    if (HasFailure() && dir_.has_value()) {
      dir_->Keep();
      std::fprintf(stderr, "data and logs kept in %s\n", dir_->path().c_str());
    }
  }

  // One more coordinator process for the space: it waits as a standby.
  absl::Status StartStandby() {
    absl::StatusOr<std::string> binary = CoordinatorBinary();
    if (!binary.ok()) return binary.status();
    const int n = static_cast<int>(standbys_.size());
    DaemonOptions daemon;
    daemon.binary = *binary;
    daemon.args = {"--listen=127.0.0.1:0", absl::StrCat("--data-dir=", dir_->path(), "/standby", n),
                   absl::StrCat("--cluster-id=", kSpace)};
    daemon.args.insert(daemon.args.end(), coordinator_flags_.begin(), coordinator_flags_.end());
    daemon.log_path = absl::StrCat(dir_->path(), "/standby", n, ".log");
    daemon.ready_log_text = "standby: ";
    absl::StatusOr<std::unique_ptr<DaemonProcess>> process = DaemonProcess::Start(daemon);
    if (!process.ok()) return process.status();
    standbys_.push_back(*std::move(process));
    return absl::OkStatus();
  }

  // The pid in the space's registry record (0: none now).
  int64_t OwnerPid() {
    absl::StatusOr<cluster::NodeRecord> owner = discovery_->Coordinator(kSpace);
    return owner.ok() ? owner->pid : 0;
  }

  DaemonProcess* ProcessWithPid(int64_t pid) {
    if (cluster_->coordinator(0) != nullptr && cluster_->coordinator(0)->pid() == pid) {
      return cluster_->coordinator(0);
    }
    for (auto& standby : standbys_) {
      if (standby->pid() == pid) return standby.get();
    }
    return nullptr;
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<EtcdServer> etcd_;
  std::vector<std::string> coordinator_flags_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<std::unique_ptr<DaemonProcess>> standbys_;
  std::unique_ptr<cluster::RegistryConnection> connection_;
  cluster::Discovery* discovery_ = nullptr;
};

TEST_F(FailoverTest, TheOwnerKilledOrPausedTenTimesLosesNoTransactionAndDecidesNothingTwice) {
  auto directory = std::make_shared<cluster::RegistryCoordinatorDirectory>(
      discovery_, cluster::kDefaultCoordinatorService, cluster::BalancePolicy::kRoundRobin);
  ClientOptions client_options;
  client_options.settle_timeout = absl::Seconds(60);
  Client client(directory, client_options);
  std::vector<std::unique_ptr<AgentClient>> agents;
  std::vector<AgentClient*> agent_ptrs;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
    agent_ptrs.push_back(agents.back().get());
  }
  BankOptions bank_options;
  bank_options.accounts = 100;
  bank_options.ledger = true;
  bank_options.tx_timeout = absl::Seconds(10);
  Bank bank(&client, agent_ptrs, bank_options);
  ASSERT_TRUE(bank.CreateAccounts().ok());

  Workload workload(&bank, 8);
  ASSERT_TRUE(Eventually([&] { return workload.committed_since(0) >= 30; }, absl::Seconds(30)));
  std::vector<absl::Duration> takeovers;
  int refused = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t owner_pid = OwnerPid();
    DaemonProcess* owner = ProcessWithPid(owner_pid);
    ASSERT_NE(owner, nullptr) << "round " << round << ": no known process owns " << kSpace;
    const bool pause = round % 2 == 1;
    const absl::Time lost = absl::Now();
    ASSERT_TRUE((pause ? owner->Signal(SIGSTOP) : owner->Kill9()).ok());
    // A standby takes the space once the owner's lease has expired, and
    // registers under the space's name.
    ASSERT_TRUE(Eventually(
        [&] {
          const int64_t now = OwnerPid();
          return now != 0 && now != owner_pid;
        },
        kTtl + absl::Seconds(15)))
        << "round " << round << ": no standby took " << kSpace << " over";
    takeovers.push_back(absl::Now() - lost);
    const size_t at_takeover = workload.size();
    ASSERT_TRUE(
        Eventually([&] { return workload.committed_since(at_takeover) >= 10; }, absl::Seconds(30)))
        << "round " << round << ": no commits after the takeover";
    if (pause) {
      // Resumed, it learns from etcd that its fence is gone, and stops.
      ASSERT_TRUE(owner->Signal(SIGCONT).ok());
      absl::StatusOr<ExitStatus> exited = owner->Wait(absl::Seconds(15));
      ASSERT_TRUE(exited.ok()) << "round " << round << ": the resumed old owner still runs";
      EXPECT_EQ(exited->code, 3) << owner->LogTail();
      // Whichever write it tries first (a decision, its lease's renewal, or
      // its registration) is refused by the compare on the owner key.
      const std::string log = owner->LogTail(20000);
      EXPECT_TRUE(absl::StrContains(log, "lost the txid space")) << log;
      EXPECT_TRUE(absl::StrContains(log, "etcd refused a write fenced") ||
                  absl::StrContains(log, "no longer owns what the record stands for"))
          << log;
      ++refused;
    }
    ASSERT_TRUE(StartStandby().ok());
  }
  workload.Stop();
  const absl::Status finished = bank.AwaitPhase2(absl::Seconds(60));
  ASSERT_TRUE(finished.ok()) << finished;

  const std::vector<TransferResult> results = workload.results();
  int committed = 0;
  int unknown = 0;
  for (const TransferResult& result : results) {
    committed += result.outcome == TransferOutcome::kCommitted;
    unknown += result.outcome == TransferOutcome::kUnknown;
  }
  absl::StatusOr<AuditReport> audit = Audit(cluster_->agent_dbs(), Told(results));
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->Atomic()) << audit->ToString();
  EXPECT_EQ(audit->prepared, 0) << audit->ToString();
  EXPECT_EQ(audit->money, bank.TotalMoney());
  EXPECT_EQ(refused, kRounds / 2);
  // The store holds open transactions only: once every one has ended (END
  // is written just after phase 2), the space's log has no transaction keys
  // left, only outcome bitmaps.
  size_t left = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<cluster::RangeResult> keys = connection_->etcd()->GetPrefix(
            absl::StrCat(cluster::kDefaultPrefix, "/spaces/", kSpace, "/log/tx/"));
        left = keys.ok() ? keys->kvs.size() : 1;
        return left == 0;
      },
      absl::Seconds(10)))
      << left << " transaction key(s) left in etcd";

  std::sort(takeovers.begin(), takeovers.end());
  std::printf(
      "%d losses of the owner (%d kill -9, %d SIGSTOP past the lease): takeover after %s "
      "median, %s max (lease TTL %s); %zu transfers, %d committed, %d unknown to their client\n",
      kRounds, kRounds - refused, refused,
      absl::FormatDuration(takeovers[takeovers.size() / 2]).c_str(),
      absl::FormatDuration(takeovers.back()).c_str(), absl::FormatDuration(kTtl).c_str(),
      results.size(), committed, unknown);
}

}  // namespace
}  // namespace txcoord::testing
