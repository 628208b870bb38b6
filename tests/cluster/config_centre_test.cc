// The config centre end to end (docs/cluster.md, "Config centre"): a real
// etcd, a real coordinator and agent started with --registry, and the real
// txctl. A lock timeout set with `txctl config set` changes how long a
// blocked write waits, without a restart; an invalid value is refused by
// txctl and, put into etcd directly, ignored by the agent; a daemon whose
// etcd cannot be read refuses to start.
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "cluster/etcd_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/daemon_process.h"
#include "harness/etcd_server.h"
#include "harness/temp_dir.h"
#include "tests/operators/txctl_runner.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kLockTimeoutKey[] = "/txcoord/config/orders/lock_timeout";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Polls `done` every 20ms until it holds or `timeout` passes.
template <typename Done>
bool Eventually(Done done, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class ConfigCentreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    cluster::EtcdClientOptions client_options;
    client_options.endpoints = etcd_->endpoints();
    etcd_client_ = std::make_unique<cluster::EtcdClient>(std::move(client_options));

    ClusterOptions options;
    options.agents = 1;
    options.agent_names = {"orders"};
    options.cluster_id = "cc";
    const std::string registry = "--registry=" + etcd_->registry_url();
    options.coordinator_flags = {registry};
    options.agent_flags = {registry, "--lock_timeout=5s"};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    coordinator_ = std::make_unique<Client>(cluster_->coordinator_address());
    orders_ = std::make_unique<AgentClient>(cluster_->agent_address(0));
    absl::StatusOr<ExecuteResult> created = orders_->Execute(
        "", {{"CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)", {}},
             {"INSERT INTO items (id, v) VALUES (1, 0)", {}}});
    ASSERT_TRUE(created.ok()) << created.status();
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    orders_.reset();
    coordinator_.reset();
    EXPECT_TRUE(cluster_->CheckRunning().ok()) << cluster_->CheckRunning();
    absl::Status stopped = cluster_->StopAll();
    EXPECT_TRUE(stopped.ok()) << stopped;
    if (HasFailure()) {
      cluster_->KeepDir();
      std::cerr << "cluster data and daemon logs kept in " << cluster_->dir() << "\n";
    }
  }

  TxctlResult Txctl(std::vector<std::string> args) {
    args.push_back("--registry=" + etcd_->registry_url());
    return RunTxctl(args);
  }

  bool AgentLogged(const std::string& text) {
    return Eventually([&] { return absl::StrContains(ReadFile(cluster_->agent_log(0)), text); });
  }

  // How long a write to row 1 waits, with the agent's default lock timeout,
  // while another transaction holds the row; its status in `status`.
  absl::Duration BlockedWrite(absl::Status* status) {
    absl::StatusOr<std::string> holder = coordinator_->Begin(absl::Seconds(60));
    EXPECT_TRUE(holder.ok()) << holder.status();
    EXPECT_TRUE(orders_->ExecuteOne(*holder, "UPDATE items SET v = v + 1 WHERE id = 1").ok());
    absl::StatusOr<std::string> waiter = coordinator_->Begin(absl::Seconds(60));
    EXPECT_TRUE(waiter.ok()) << waiter.status();
    const absl::Time start = absl::Now();
    *status = orders_->ExecuteOne(*waiter, "UPDATE items SET v = v + 10 WHERE id = 1").status();
    const absl::Duration waited = absl::Now() - start;
    EXPECT_TRUE(coordinator_->Abort(*holder).ok());
    EXPECT_TRUE(coordinator_->Abort(*waiter).ok());
    return waited;
  }

  std::unique_ptr<EtcdServer> etcd_;
  std::unique_ptr<cluster::EtcdClient> etcd_client_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> coordinator_;
  std::unique_ptr<AgentClient> orders_;
};

TEST_F(ConfigCentreTest, LockTimeoutSetWithTxctlChangesTheWaitWithoutARestart) {
  const pid_t agent_pid = cluster_->agent(0)->pid();

  // Longer than the flag's 5s first...
  TxctlResult set = Txctl({"config", "set", "orders", "lock_timeout", "7s"});
  ASSERT_EQ(set.exit_code, 0) << set;
  EXPECT_THAT(set.out, HasSubstr("orders lock_timeout: unset (--lock_timeout flag) -> 7s"));
  ASSERT_TRUE(AgentLogged("config: orders lock_timeout 5s -> 7s (etcd revision"));
  absl::Status status;
  absl::Duration waited = BlockedWrite(&status);
  EXPECT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("lock timeout after 7s"));
  EXPECT_GE(waited, absl::Milliseconds(6500));

  // ...then much shorter: the same wait now ends within a fraction of that.
  set = Txctl({"config", "set", "orders", "lock_timeout", "300ms"});
  ASSERT_EQ(set.exit_code, 0) << set;
  EXPECT_THAT(set.out, HasSubstr("orders lock_timeout: 7s -> 300ms"));
  ASSERT_TRUE(AgentLogged("config: orders lock_timeout 7s -> 300ms"));
  waited = BlockedWrite(&status);
  EXPECT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("lock timeout after 300ms"));
  EXPECT_GE(waited, absl::Milliseconds(250));
  EXPECT_LT(waited, absl::Seconds(2));

  EXPECT_EQ(cluster_->agent(0)->pid(), agent_pid) << "the agent was restarted";
  TxctlResult history = Txctl({"config", "history", "orders", "lock_timeout"});
  ASSERT_EQ(history.exit_code, 0) << history;
  EXPECT_LT(history.out.find("300ms"), history.out.find("7s")) << history.out;
}

TEST_F(ConfigCentreTest, InvalidValueIsRefusedByTxctlAndEtcdIsUnchanged) {
  ASSERT_EQ(Txctl({"config", "set", "orders", "lock_timeout", "300ms"}).exit_code, 0);
  absl::StatusOr<cluster::RangeResult> before = etcd_client_->Get(kLockTimeoutKey);
  ASSERT_TRUE(before.ok()) << before.status();

  TxctlResult refused = Txctl({"config", "set", "orders", "lock_timeout", "banana"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT: invalid lock_timeout \"banana\""));
  EXPECT_THAT(refused.err, HasSubstr("allowed 10ms..1m"));
  TxctlResult unknown = Txctl({"config", "set", "orders", "lock_timeuot", "1s"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;

  absl::StatusOr<cluster::RangeResult> after = etcd_client_->Get(kLockTimeoutKey);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->revision, before->revision) << "txctl wrote to etcd";
  ASSERT_EQ(after->kvs.size(), 1u);
  EXPECT_EQ(after->kvs[0].value, "300ms");
}

TEST_F(ConfigCentreTest, InvalidValuePutIntoEtcdIsLoggedAndTheLastValidOneStays) {
  ASSERT_EQ(Txctl({"config", "set", "orders", "lock_timeout", "300ms"}).exit_code, 0);
  ASSERT_TRUE(AgentLogged("config: orders lock_timeout 5s -> 300ms"));

  // Around txctl's validation, as a hand-made etcdctl put would be.
  ASSERT_TRUE(etcd_client_->Put(kLockTimeoutKey, "-5s").ok());
  ASSERT_TRUE(AgentLogged("config: orders lock_timeout: ignoring \"-5s\""));
  EXPECT_TRUE(AgentLogged("keeping 300ms"));
  absl::Status status;
  const absl::Duration waited = BlockedWrite(&status);
  EXPECT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("lock timeout after 300ms"));
  EXPECT_LT(waited, absl::Seconds(2));

  TxctlResult get = Txctl({"config", "get", "orders", "lock_timeout"});
  EXPECT_EQ(get.exit_code, 0) << get;
  EXPECT_THAT(get.out, HasSubstr("IGNORED by the daemons"));

  // Unset: back to the flag's 5s.
  TxctlResult unset = Txctl({"config", "unset", "orders", "lock_timeout"});
  ASSERT_EQ(unset.exit_code, 0) << unset;
  EXPECT_TRUE(AgentLogged("config: orders lock_timeout 300ms -> 5s (deleted"));
}

TEST_F(ConfigCentreTest, CoordinatorAppliesItsServicesSettings) {
  TxctlResult set = Txctl({"config", "set", "txcoord", "tx_timeout", "2s"});
  ASSERT_EQ(set.exit_code, 0) << set;
  ASSERT_TRUE(Eventually([&] {
    return absl::StrContains(ReadFile(cluster_->coordinator_log()),
                             "config: txcoord tx_timeout 30s -> 2s");
  }));
  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  absl::StatusOr<v1::Transaction> tx = coordinator_->GetTransaction(*txid);
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(tx->deadline_unix_ms() - tx->begin_unix_ms(), 2000);
  ASSERT_TRUE(coordinator_->Abort(*txid).ok());
}

TEST(ConfigCentreStartTest, DaemonWhoseEtcdCannotBeReadRefusesToStart) {
  absl::StatusOr<TempDir> dir = TempDir::Create("config_centre_start");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::string> agent = AgentBinary();
  ASSERT_TRUE(agent.ok()) << agent.status();
  // Port 1 on loopback: nothing listens there.
  DaemonOptions options;
  options.binary = *agent;
  options.args = {"--db=" + dir->path() + "/orders.db", "--name=orders", "--listen=127.0.0.1:0",
                  "--registry=etcd://127.0.0.1:1"};
  options.log_path = dir->path() + "/orders.log";
  options.start_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> started = DaemonProcess::Start(options);
  ASSERT_FALSE(started.ok()) << "the agent started without its etcd";
  const std::string log = ReadFile(options.log_path);
  EXPECT_THAT(log, HasSubstr("cannot start: "));
  EXPECT_THAT(log, HasSubstr("etcd unreachable at 127.0.0.1:1"));
}

}  // namespace
}  // namespace txcoord::testing
