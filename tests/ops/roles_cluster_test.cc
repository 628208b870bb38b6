// Least privilege between real processes under mutual TLS, one
// certificate per role: the coordinator (CN=txcoord), two agents
// (CN=agent-orders, CN=agent-payments, each bound to its participant
// name), a service (CN=orders-service), an operator (CN=operator) and a
// certificate the CA signed for nobody in particular (CN=intruder). Every
// identity calls every method of every service; what the table of
// docs/operations.md ("Security") allows is served, the rest is
// PERMISSION_DENIED and changes nothing. Also: certificates rotated on disk
// are picked up by new connections while a transaction runs on.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "harness/generic_call.h"
#include "harness/sqlite_inspect.h"
#include "harness/temp_dir.h"
#include "rpc/grpc_util.h"
#include "rpc/tls.h"
#include "tests/ops/scrape.h"
#include "tests/ops/test_certs.h"
#include "txcoord/v1/admin.grpc.pb.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> TlsFlags(const TlsFiles& files) {
  return {"--tls_cert=" + files.cert, "--tls_key=" + files.key, "--tls_ca=" + files.ca};
}

class RolesClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("roles-cluster");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir_->path());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *std::move(certs);

    ClusterOptions options;
    options.agents = 2;
    options.agent_names = {"orders", "payments"};
    options.cluster_id = "roles";
    options.dir = dir_->Path("cluster");
    options.coordinator_flags = TlsFlags(certs_.coordinator);
    options.coordinator_flags.insert(
        options.coordinator_flags.end(),
        {"--admin_allow=operator", "--coordinator_clients=orders-service",
         "--agent_identities=orders=agent-orders,payments=agent-payments",
         "--metrics_listen=127.0.0.1:0"});
    options.agent_flags = {"--admin_allow=operator", "--coordinator_identity=txcoord",
                           "--service_allow=orders-service", "--metrics_listen=127.0.0.1:0"};
    options.per_agent_flags = {TlsFlags(certs_.agent_orders), TlsFlags(certs_.agent_payments)};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);

    identities_ = {{"txcoord", certs_.coordinator},
                   {"agent-orders", certs_.agent_orders},
                   {"orders-service", certs_.service},
                   {"operator", certs_.admin},
                   {"intruder", certs_.intruder}};
  }

  void TearDown() override {
    if (cluster_ == nullptr) return;
    EXPECT_TRUE(cluster_->StopAll().ok());
    if (HasFailure()) {
      dir_->Keep();
      std::cerr << "certificates, data and daemon logs kept in " << dir_->path() << "\n";
    }
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& target, const TlsFiles& who) {
    absl::StatusOr<TlsConfig> tls = LoadTlsConfig(who);
    EXPECT_TRUE(tls.ok()) << tls.status();
    grpc::ChannelArguments args;
    // A channel of its own per test call: no connection is shared.
    args.SetInt("txcoord.test.unique", ++unique_);
    return grpc::CreateCustomChannel(target, ChannelCredentials(*tls), args);
  }

  std::optional<TempDir> dir_;
  TestCerts certs_;
  std::unique_ptr<Cluster> cluster_;
  std::map<std::string, TlsFiles> identities_;
  int unique_ = 0;
};

// A request for `method` that passes every check but the caller's: the
// agent-role methods carry participant "orders" (agent-orders' own name).
std::unique_ptr<google::protobuf::Message> RequestFor(const std::string& method) {
  if (absl::EndsWith(method, "/Enlist")) {
    auto request = std::make_unique<v1::EnlistRequest>();
    request->set_txid("roles.1.999999");
    request->set_participant("orders");
    request->set_endpoint("127.0.0.1:1");
    return request;
  }
  if (absl::EndsWith(method, "/EnlistBatch")) {
    auto request = std::make_unique<v1::EnlistBatchRequest>();
    v1::EnlistRequest* one = request->add_enlistments();
    one->set_txid("roles.1.999999");
    one->set_participant("orders");
    one->set_endpoint("127.0.0.1:1");
    return request;
  }
  if (absl::EndsWith(method, "/QueryOutcome")) {
    auto request = std::make_unique<v1::QueryOutcomeRequest>();
    request->set_txid("roles.1.999999");
    request->set_participant("orders");
    return request;
  }
  return std::make_unique<v1::BeginRequest>();  // empty on the wire
}

TEST_F(RolesClusterTest, EveryRoleMayCallExactlyTheMethodsOfItsRole) {
  // Which identity holds the role of each service's methods.
  const std::map<std::string, std::set<std::string>> coordinator_side = {
      {"txcoord.v1.CoordinatorAdmin", {"operator"}},
      {"txcoord.v1.Coordinator", {"orders-service"}},
  };
  const std::set<std::string> agent_methods = {"/txcoord.v1.Coordinator/Enlist",
                                               "/txcoord.v1.Coordinator/EnlistBatch",
                                               "/txcoord.v1.Coordinator/QueryOutcome"};
  const std::map<std::string, std::set<std::string>> agent_side = {
      {"txcoord.v1.AgentAdmin", {"operator"}},
      {"txcoord.v1.Participant", {"txcoord"}},
      {"txcoord.v1.Agent", {"orders-service"}},
  };
  // Linked in for their descriptors, which MethodsOf reads.
  ASSERT_NE(v1::ListTransactionsRequest::descriptor(), nullptr);
  ASSERT_NE(v1::ListInDoubtRequest::descriptor(), nullptr);
  int calls = 0;
  int refused = 0;
  const auto check = [&](const std::string& target,
                         const std::map<std::string, std::set<std::string>>& table) {
    for (const auto& [service, holders] : table) {
      const std::vector<std::string> methods = MethodsOf(service);
      EXPECT_FALSE(methods.empty()) << service;
      for (const std::string& method : methods) {
        for (const auto& [who, files] : identities_) {
          const bool allowed =
              agent_methods.count(method) ? who == "agent-orders" : holders.count(who) > 0;
          const grpc::Status status =
              CallMethod(Channel(target, files), method, *RequestFor(method));
          ++calls;
          if (allowed) {
            EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
                << who << " " << method << ": " << status.error_message();
          } else {
            ++refused;
            EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
                << who << " " << method << ": " << status.error_message();
            EXPECT_THAT(status.error_message(), HasSubstr(method));
            EXPECT_THAT(status.error_message(), HasSubstr("CN=" + who));
            EXPECT_THAT(status.error_message(), HasSubstr("role"));
          }
        }
      }
    }
  };
  check(cluster_->coordinator_address(), coordinator_side);
  check(cluster_->agent_address(0), agent_side);
  // Health checks are everyone's.
  for (const auto& [who, files] : identities_) {
    EXPECT_NE(CallMethod(Channel(cluster_->agent_address(0), files), "/grpc.health.v1.Health/Check",
                         v1::BeginRequest())
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << who;
  }
  std::cout << calls << " calls, " << refused << " refused as the table says\n";

  // Refusals are counted by role.
  absl::StatusOr<std::string> metrics = MetricsAddressFromLog(cluster_->agent_log(0));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  absl::StatusOr<Scrape> page = ScrapeMetrics(*metrics);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_GT(page->Value("txcoord_calls_refused_total{role=\"coordinator\"}").value_or(0), 0);
  EXPECT_THAT(ReadFile(cluster_->agent_log(0)), HasSubstr("refused"));
}

TEST_F(RolesClusterTest, OnlyTheCoordinatorMaySettleAPreparedBranch) {
  ClientOptions client_options;
  client_options.credentials = ChannelCredentials(*LoadTlsConfig(certs_.service));
  Client coordinator(cluster_->coordinator_address(), client_options);
  AgentClientOptions agent_options;
  agent_options.credentials = client_options.credentials;
  AgentClient orders(cluster_->agent_address(0), agent_options);
  ASSERT_TRUE(orders.ExecuteOne("", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").ok());

  absl::StatusOr<std::string> txid = coordinator.Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  ExecuteOptions prepare;
  prepare.prepare = true;
  absl::StatusOr<SqlResult> inserted =
      orders.ExecuteOne(*txid, "INSERT INTO t VALUES(1, 'x')", {}, prepare);
  ASSERT_TRUE(inserted.ok()) << inserted.status();

  // Everyone but the coordinator is refused Commit and Abort of the
  // prepared branch, another agent's certificate included.
  v1::BranchRequest branch;
  branch.set_txid(*txid);
  for (const char* who : {"orders-service", "agent-orders", "operator", "intruder"}) {
    const TlsFiles& files = identities_.at(who);
    for (const char* method : {"/txcoord.v1.Participant/Commit", "/txcoord.v1.Participant/Abort",
                               "/txcoord.v1.Participant/CommitOnePhase"}) {
      grpc::Status status = CallMethod(Channel(cluster_->agent_address(0), files), method, branch);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who << " " << method;
    }
  }
  EXPECT_EQ(*QueryInt64(cluster_->agent_db(0), "SELECT count(*) FROM t"), 0);
  absl::StatusOr<v1::Transaction> info = coordinator.GetTransaction(*txid);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::TX_STATE_ACTIVE);

  // The coordinator still settles it (phase 2 reaches the agent after
  // Commit returns).
  absl::StatusOr<CommitResult> result = coordinator.Commit(*txid);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
  int64_t rows = 0;
  for (int i = 0; i < 100 && rows != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rows = QueryInt64(cluster_->agent_db(0), "SELECT count(*) FROM t").value_or(-1);
  }
  EXPECT_EQ(rows, 1);
}

TEST_F(RolesClusterTest, AnAgentMayEnlistAndAskOnlyUnderItsOwnName) {
  ClientOptions client_options;
  client_options.credentials = ChannelCredentials(*LoadTlsConfig(certs_.service));
  Client coordinator(cluster_->coordinator_address(), client_options);
  absl::StatusOr<std::string> txid = coordinator.Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();

  std::shared_ptr<grpc::Channel> as_orders =
      Channel(cluster_->coordinator_address(), certs_.agent_orders);
  v1::EnlistRequest enlist;
  enlist.set_txid(*txid);
  enlist.set_participant("payments");
  enlist.set_endpoint("127.0.0.1:1");
  grpc::Status status = CallMethod(as_orders, "/txcoord.v1.Coordinator/Enlist", enlist);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("\"payments\""));
  EXPECT_THAT(status.error_message(), HasSubstr("CN=agent-orders"));
  v1::EnlistBatchRequest batch;
  *batch.add_enlistments() = enlist;
  batch.mutable_enlistments(0)->set_participant("orders");
  *batch.add_enlistments() = enlist;  // "payments": the whole batch is refused
  EXPECT_EQ(CallMethod(as_orders, "/txcoord.v1.Coordinator/EnlistBatch", batch).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::QueryOutcomeRequest query;
  query.set_txid(*txid);
  query.set_participant("payments");
  EXPECT_EQ(CallMethod(as_orders, "/txcoord.v1.Coordinator/QueryOutcome", query).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Nothing was enlisted; under its own name the agent is served.
  absl::StatusOr<v1::Transaction> info = coordinator.GetTransaction(*txid);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->branches_size(), 0);
  enlist.set_participant("orders");
  EXPECT_TRUE(CallMethod(as_orders, "/txcoord.v1.Coordinator/Enlist", enlist).ok());
  ASSERT_TRUE(coordinator.Abort(*txid).ok());

  absl::StatusOr<std::string> metrics = MetricsAddressFromLog(cluster_->coordinator_log());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  absl::StatusOr<Scrape> page = ScrapeMetrics(*metrics);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->Value("txcoord_calls_refused_total{role=\"agent\"}").value_or(0), 3);
}

// --- Rotation -----------------------------------------------------------------

// The PEM certificate the server presented on `channel`'s connection.
std::string PresentedCertificate(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::BeginRequest request;
  v1::BeginResponse response;
  grpc::Status status = v1::Coordinator::NewStub(channel)->Begin(&context, request, &response);
  if (!status.ok()) return "call failed: " + status.error_message();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  for (const grpc::string_ref& pem : auth->FindPropertyValues("x509_pem_cert")) {
    return std::string(pem.data(), pem.size());
  }
  return "";
}

TEST(CertificateRotationTest, NewConnectionsUseReplacedFilesWhileTransactionsGoOn) {
  absl::StatusOr<TempDir> dir = TempDir::Create("cert-rotation");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir->path());
  ASSERT_TRUE(certs.ok()) << certs.status();
  ClusterOptions options;
  options.agents = 2;
  options.coordinator_flags = certs->DaemonFlags("operator");
  options.coordinator_flags.push_back("--tls_reload_interval=1s");
  options.agent_flags = certs->AgentFlags("operator");
  options.agent_flags.push_back("--tls_reload_interval=1s");
  absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Cluster& cluster = **started;

  std::shared_ptr<grpc::ChannelCredentials> credentials =
      ChannelCredentials(*LoadTlsConfig(certs->service));
  ClientOptions client_options;
  client_options.credentials = credentials;
  Client coordinator(cluster.coordinator_address(), client_options);
  AgentClientOptions agent_options;
  agent_options.credentials = credentials;
  std::vector<std::unique_ptr<AgentClient>> agents;
  for (int i = 0; i < 2; ++i) {
    agents.push_back(std::make_unique<AgentClient>(cluster.agent_address(i), agent_options));
    ASSERT_TRUE(agents[i]->ExecuteOne("", "CREATE TABLE t(id INTEGER PRIMARY KEY)").ok());
  }
  const std::string old_pem = ReadFile(certs->node.cert);
  EXPECT_EQ(PresentedCertificate(MakeChannel(cluster.coordinator_address(), credentials)), old_pem);

  // A transaction under way across the rotation.
  absl::StatusOr<std::string> txid = coordinator.Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  ASSERT_TRUE(agents[0]->ExecuteOne(*txid, "INSERT INTO t VALUES(1)").ok());

  ASSERT_TRUE(RotateCertificate(dir->path(), certs->node, "txcoord-node", 4242).ok());
  const std::string new_pem = ReadFile(certs->node.cert);
  ASSERT_NE(new_pem, old_pem);
  // New connections get the new certificate once the daemon has re-read
  // the files (every second here).
  std::string presented;
  for (int i = 0; i < 100 && presented != new_pem; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    grpc::ChannelArguments args;
    args.SetInt("txcoord.test.unique", i);
    presented = PresentedCertificate(
        grpc::CreateCustomChannel(cluster.coordinator_address(), credentials, args));
  }
  EXPECT_EQ(presented, new_pem);

  // The transaction goes on: a new agent enlists (its first call to the
  // coordinator since the rotation) and both commit.
  ASSERT_TRUE(agents[1]->ExecuteOne(*txid, "INSERT INTO t VALUES(1)").ok());
  absl::StatusOr<CommitResult> result = coordinator.Commit(*txid);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
  for (int i = 0; i < 2; ++i) {
    int64_t rows = 0;
    for (int attempt = 0; attempt < 100 && rows != 1; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      rows = QueryInt64(cluster.agent_db(i), "SELECT count(*) FROM t").value_or(-1);
    }
    EXPECT_EQ(rows, 1) << "agent " << i;
  }
  // And restarted agents (new connections both ways) work with the new files.
  ASSERT_TRUE(cluster.RestartAgent(1).ok());
  absl::StatusOr<std::string> second = coordinator.Begin();
  ASSERT_TRUE(second.ok());
  // The client's old connection died with the agent: a fresh one.
  grpc::ChannelArguments fresh;
  fresh.SetInt("txcoord.test.unique", 1000);
  AgentClient restarted(grpc::CreateCustomChannel(cluster.agent_address(1), credentials, fresh),
                        agent_options);
  absl::StatusOr<SqlResult> again = restarted.ExecuteOne(*second, "INSERT INTO t VALUES(2)");
  ASSERT_TRUE(again.ok()) << again.status();
  result = coordinator.Commit(*second);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
  EXPECT_TRUE(cluster.StopAll().ok());
}

}  // namespace
}  // namespace txcoord::testing
