// Mutual TLS between real processes: one txcoord and two txagents started
// with --tls_cert/--tls_key/--tls_ca/--admin_allow, a client library with
// a certificate, and the admin services guarded by the allow list.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/daemon_process.h"
#include "harness/spawn.h"
#include "harness/temp_dir.h"
#include "rpc/grpc_util.h"
#include "rpc/tls.h"
#include "tests/ops/test_certs.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

class TlsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("tls-cluster");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir_->path());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *std::move(certs);

    ClusterOptions options;
    options.agents = 2;
    options.cluster_id = "tls";
    options.dir = dir_->Path("cluster");
    options.coordinator_flags = certs_.DaemonFlags("operator");
    options.agent_flags = certs_.AgentFlags("operator");
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    EXPECT_TRUE(cluster_->StopAll().ok());
    if (HasFailure()) {
      dir_->Keep();
      std::cerr << "certificates, data and daemon logs kept in " << dir_->path() << "\n";
    }
  }

  // Channel credentials trusting the test CA, presenting `identity` (none
  // if its cert is empty).
  std::shared_ptr<grpc::ChannelCredentials> Credentials(TlsFiles identity) {
    identity.ca = certs_.ca;
    absl::StatusOr<TlsConfig> tls = LoadTlsConfig(identity);
    EXPECT_TRUE(tls.ok()) << tls.status();
    return tls.ok() ? ChannelCredentials(*tls) : nullptr;
  }

  grpc::Status ListTransactions(const TlsFiles& identity) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    v1::ListTransactionsResponse response;
    return v1::CoordinatorAdmin::NewStub(
               MakeChannel(cluster_->coordinator_address(), Credentials(identity)))
        ->ListTransactions(&context, v1::ListTransactionsRequest(), &response);
  }

  grpc::Status ListInDoubt(int agent, const TlsFiles& identity) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    v1::ListInDoubtResponse response;
    return v1::AgentAdmin::NewStub(
               MakeChannel(cluster_->agent_address(agent), Credentials(identity)))
        ->ListInDoubt(&context, v1::ListInDoubtRequest(), &response);
  }

  std::optional<TempDir> dir_;
  TestCerts certs_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(TlsClusterTest, TransactionCommitsOverMutualTlsBetweenAllProcesses) {
  ClientOptions client_options;
  client_options.credentials = Credentials(certs_.service);
  Client coordinator(cluster_->coordinator_address(), client_options);
  AgentClientOptions agent_options;
  agent_options.credentials = Credentials(certs_.service);
  std::vector<std::unique_ptr<AgentClient>> agents;
  for (int i = 0; i < 2; ++i) {
    agents.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i), agent_options));
    ASSERT_TRUE(agents[i]->ExecuteOne("", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").ok());
  }

  absl::StatusOr<std::string> txid = coordinator.Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  // Each first write enlists over agent -> coordinator mTLS; Commit
  // prepares and commits over coordinator -> agent mTLS.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<SqlResult> inserted =
        agents[i]->ExecuteOne(*txid, "INSERT INTO t VALUES(1, ?1)", {std::string("secure")});
    ASSERT_TRUE(inserted.ok()) << inserted.status();
  }
  absl::StatusOr<CommitResult> result = coordinator.Commit(*txid);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;

  // Phase 2 reached both agents over mTLS. A probe insert of the same key
  // waits for the row lock until the branch is applied, then finds the row.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::string> probe = coordinator.Begin();
    ASSERT_TRUE(probe.ok());
    absl::StatusOr<ExecuteResult> read = agents[i]->Execute(
        *probe,
        {{"INSERT OR IGNORE INTO t VALUES(1, 'probe')", {}}, {"SELECT v FROM t WHERE id = 1", {}}});
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->results.size(), 2u);
    ASSERT_EQ(read->results[1].rows.size(), 1u) << "agent " << i;
    EXPECT_EQ(std::get<std::string>(read->results[1].rows[0][0]), "secure") << "agent " << i;
    ASSERT_TRUE(coordinator.Abort(*probe).ok());
  }
}

// Fail-fast clients (wait_for_ready off) here: a refused handshake is then
// UNAVAILABLE at once, rather than a wait until the deadline.
TEST_F(TlsClusterTest, ClientWithoutCertificateIsRefused) {
  ClientOptions options;
  options.wait_for_ready = false;
  options.credentials = Credentials(TlsFiles{});
  Client coordinator(cluster_->coordinator_address(), options);
  absl::StatusOr<std::string> txid = coordinator.Begin();
  EXPECT_EQ(txid.status().code(), absl::StatusCode::kUnavailable) << txid.status();

  AgentClientOptions agent_options;
  agent_options.wait_for_ready = false;
  agent_options.credentials = Credentials(TlsFiles{});
  AgentClient agent(cluster_->agent_address(0), agent_options);
  EXPECT_EQ(agent.ExecuteOne("", "SELECT 1").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsClusterTest, PlaintextClientIsRefused) {
  ClientOptions options;
  options.wait_for_ready = false;
  Client coordinator(cluster_->coordinator_address(), options);
  EXPECT_EQ(coordinator.Begin().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsClusterTest, AdminCallsNeedAnAllowedIdentity) {
  grpc::Status refused = ListTransactions(certs_.service);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("CN=orders-service"));
  grpc::Status allowed = ListTransactions(certs_.admin);
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();

  refused = ListInDoubt(1, certs_.intruder);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("CN=intruder"));
  allowed = ListInDoubt(1, certs_.admin);
  EXPECT_TRUE(allowed.ok()) << allowed.error_message();
}

// Runs txctl with `args` (the coordinator and TLS flags added), its output
// in `output`; returns its exit code, or -1 if it could not run.
int RunTxctl(const std::string& dir, const std::string& coordinator, const TlsFiles& identity,
             std::vector<std::string> args, std::string* output) {
  absl::StatusOr<std::string> build = BuildDir();
  if (!build.ok()) return -1;
  const std::string txctl = *build + "/cli/txctl";
  if (access(txctl.c_str(), X_OK) != 0) return -1;
  args.insert(args.begin(), {txctl, "--coordinator=" + coordinator, "--tls-ca=" + identity.ca,
                             "--tls-cert=" + identity.cert, "--tls-key=" + identity.key});
  const std::string log = dir + "/txctl.out";
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  absl::StatusOr<pid_t> pid = SpawnChild(args, in, out, out);
  close(in);
  close(out);
  if (!pid.ok()) return -1;
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::ifstream text(log);
  std::stringstream buffer;
  buffer << text.rdbuf();
  *output = buffer.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(TlsClusterTest, TxctlNeedsAnAllowedIdentity) {
  std::string output;
  TlsFiles admin = certs_.admin;
  admin.ca = certs_.ca;
  const int ok = RunTxctl(dir_->path(), cluster_->coordinator_address(), admin, {"list"}, &output);
  if (ok == -1) GTEST_SKIP() << "txctl is not built in this tree";
  EXPECT_EQ(ok, 0) << output;
  TlsFiles intruder = certs_.intruder;
  intruder.ca = certs_.ca;
  EXPECT_EQ(RunTxctl(dir_->path(), cluster_->coordinator_address(), intruder, {"list"}, &output),
            3)
      << output;  // kExitRefused
  EXPECT_THAT(output, HasSubstr("CN=intruder"));
}

// --- Start-up checks -------------------------------------------------------

// Starts a coordinator with `flags` and expects it to exit; returns its log.
std::string FailedStartLog(const std::string& dir, const std::vector<std::string>& flags) {
  absl::StatusOr<std::string> binary = CoordinatorBinary();
  EXPECT_TRUE(binary.ok()) << binary.status();
  DaemonOptions options;
  options.binary = *binary;
  options.args = {"--listen=127.0.0.1:0", "--data-dir=" + dir + "/data"};
  options.args.insert(options.args.end(), flags.begin(), flags.end());
  options.log_path = dir + "/failed-start.log";
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  EXPECT_FALSE(daemon.ok()) << "started with " << flags.front();
  return daemon.ok() ? "" : std::string(daemon.status().message());
}

TEST_F(TlsClusterTest, AdminAllowListWithoutMutualTlsRefusesToStart) {
  EXPECT_THAT(FailedStartLog(dir_->path(), {"--admin_allow=operator"}),
              HasSubstr("--admin_allow needs mutual TLS"));
  EXPECT_THAT(
      FailedStartLog(dir_->path(), {"--tls_cert=" + certs_.node.cert,
                                    "--tls_key=" + certs_.node.key, "--admin_allow=operator"}),
      HasSubstr("--admin_allow needs --tls_ca"));
}

TEST_F(TlsClusterTest, BadCertificateFileRefusesToStartNamingIt) {
  const std::string missing = dir_->Path("missing.crt");
  EXPECT_THAT(
      FailedStartLog(dir_->path(), {"--tls_cert=" + missing, "--tls_key=" + certs_.node.key}),
      HasSubstr("--tls_cert " + missing + ": cannot read"));
}

// The framed port is plain TCP: a daemon whose gRPC port has TLS must not
// open a way around it.
TEST_F(TlsClusterTest, ADaemonWithTlsRefusesAFramedPort) {
  cluster_->SetAgentExtraFlags(1, {"--framed_listen=127.0.0.1:0"});
  absl::Status restarted = cluster_->RestartAgent(1);
  EXPECT_FALSE(restarted.ok());
  EXPECT_THAT(restarted.message(), HasSubstr("--framed_listen serves plain TCP"));
  cluster_->SetAgentExtraFlags(1, {});
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  std::vector<std::string> coordinator_flags = certs_.DaemonFlags("operator");
  coordinator_flags.push_back("--framed_listen=127.0.0.1:0");
  EXPECT_THAT(FailedStartLog(dir_->path(), coordinator_flags),
              HasSubstr("--framed_listen serves plain TCP"));
}

}  // namespace
}  // namespace txcoord::testing
