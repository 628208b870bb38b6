// TLS, mutual TLS and the admin allow list on a gRPC port started by
// StartServer, with stand-in services and certificates made by openssl for
// this run. The real daemons are covered by tls_cluster_test.cc.
#include "rpc/tls.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/temp_dir.h"
#include "rpc/daemon.h"
#include "rpc/grpc_util.h"
#include "tests/ops/test_certs.h"
#include "txcoord/v1/admin.grpc.pb.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status Begin(grpc::ServerContext*, const v1::BeginRequest*,
                     v1::BeginResponse* response) override {
    response->set_txid("fake.1.1");
    return grpc::Status::OK;
  }
};

class FakeAdmin final : public v1::CoordinatorAdmin::Service {
 public:
  grpc::Status ListTransactions(grpc::ServerContext*, const v1::ListTransactionsRequest*,
                                v1::ListTransactionsResponse*) override {
    ++calls;
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<TempDir> dir = TempDir::Create("tls");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new TempDir(*std::move(dir));
    absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir_->path());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = new TestCerts(*std::move(certs));
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete dir_;
  }

  // Starts the stand-in services with the node certificate; `ca` adds
  // client verification, `allow` the admin allow list.
  void Start(bool verify_clients, const std::string& allow) {
    TlsFiles files = certs_->node;
    if (!verify_clients) files.ca.clear();
    absl::StatusOr<TlsConfig> tls = LoadTlsConfig(files);
    ASSERT_TRUE(tls.ok()) << tls.status();
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentials(*tls);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    absl::StatusOr<IdentityList> operators = IdentityList::Parse("--admin_allow", allow);
    ASSERT_TRUE(operators.ok()) << operators.status();
    AccessRules rules;
    rules.transport = verify_clients ? Transport::kMutualTls : Transport::kServerTls;
    rules.operators = *std::move(operators);
    rules.services = IdentityList::Any();
    rules.agents = IdentityList::Any();
    ServerOptions options{*credentials, std::make_shared<const AccessPolicy>(std::move(rules))};
    absl::StatusOr<ServerHandle> server =
        StartServer("tls-test", "127.0.0.1:0", {&coordinator_, &admin_}, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void TearDown() override {
    if (server_.server) server_.server->Shutdown(std::chrono::system_clock::now());
  }

  // A channel that trusts the test CA and presents `client` (which may
  // have no cert and key).
  std::shared_ptr<grpc::Channel> Channel(TlsFiles client) {
    if (client.ca.empty()) client.ca = certs_->ca;
    absl::StatusOr<TlsConfig> tls = LoadTlsConfig(client);
    EXPECT_TRUE(tls.ok()) << tls.status();
    return MakeChannel(server_.address, ChannelCredentials(*tls));
  }

  static grpc::Status Begin(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    v1::BeginResponse response;
    return v1::Coordinator::NewStub(channel)->Begin(&context, v1::BeginRequest(), &response);
  }

  static grpc::Status ListTransactions(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    v1::ListTransactionsResponse response;
    return v1::CoordinatorAdmin::NewStub(channel)->ListTransactions(
        &context, v1::ListTransactionsRequest(), &response);
  }

  static TempDir* dir_;
  static TestCerts* certs_;
  FakeCoordinator coordinator_;
  FakeAdmin admin_;
  ServerHandle server_;
};

TempDir* TlsTest::dir_ = nullptr;
TestCerts* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, ClientWithCertificateCallsTheDataPath) {
  Start(/*verify_clients=*/true, "operator");
  grpc::Status status = Begin(Channel(certs_->intruder));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefusedByMutualTls) {
  Start(/*verify_clients=*/true, "operator");
  grpc::Status status = Begin(Channel(TlsFiles{}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  Start(/*verify_clients=*/true, "operator");
  grpc::Status status = Begin(Channel(certs_->rogue));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(admin_.calls, 0);
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  Start(/*verify_clients=*/true, "operator");
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  v1::BeginResponse response;
  grpc::Status status = v1::Coordinator::NewStub(MakeChannel(server_.address))
                            ->Begin(&context, v1::BeginRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientThatDoesNotTrustTheServerRefusesIt) {
  Start(/*verify_clients=*/true, "operator");
  TlsFiles client = certs_->admin;
  client.ca = certs_->rogue.cert;  // trusts only a CA that did not sign the server
  absl::StatusOr<TlsConfig> tls = LoadTlsConfig(client);
  ASSERT_TRUE(tls.ok()) << tls.status();
  grpc::Status status = Begin(MakeChannel(server_.address, ChannelCredentials(*tls)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, AdminCallFromListedIdentityIsServed) {
  Start(/*verify_clients=*/true, "operator");
  grpc::Status status = ListTransactions(Channel(certs_->admin));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(admin_.calls, 1);
}

TEST_F(TlsTest, AdminCallFromUnlistedIdentityIsPermissionDenied) {
  Start(/*verify_clients=*/true, "operator");
  grpc::Status status = ListTransactions(Channel(certs_->intruder));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("CN=intruder"));
  EXPECT_THAT(status.error_message(), HasSubstr("/txcoord.v1.CoordinatorAdmin/ListTransactions"));
  EXPECT_EQ(admin_.calls, 0) << "a refused call must never reach the handler";
}

TEST_F(TlsTest, AdminCallMatchesDnsName) {
  Start(/*verify_clients=*/true, "ops.example.com");
  EXPECT_TRUE(ListTransactions(Channel(certs_->dns_client)).ok());
  EXPECT_EQ(ListTransactions(Channel(certs_->admin)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TlsTest, EmptyAllowListRefusesEveryone) {
  Start(/*verify_clients=*/true, "");
  EXPECT_EQ(ListTransactions(Channel(certs_->admin)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Begin(Channel(certs_->admin)).ok());
}

TEST_F(TlsTest, ServerOnlyTlsServesDataPathButRefusesAdmin) {
  Start(/*verify_clients=*/false, "operator");
  EXPECT_TRUE(Begin(Channel(TlsFiles{})).ok());
  grpc::Status status = ListTransactions(Channel(TlsFiles{}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("no client certificate"));
}

// --- Loading the files -------------------------------------------------------

TEST_F(TlsTest, LoadsAConsistentSet) {
  absl::StatusOr<TlsConfig> tls = LoadTlsConfig(certs_->node);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->has_identity());
  EXPECT_TRUE(tls->has_ca());
  EXPECT_FALSE(LoadTlsConfig(TlsFiles{})->enabled());
}

TEST_F(TlsTest, MissingFileIsNamed) {
  TlsFiles files = certs_->node;
  files.ca = dir_->Path("no-such-ca.pem");
  absl::Status status = LoadTlsConfig(files).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--tls_ca"));
  EXPECT_THAT(status.message(), HasSubstr("no-such-ca.pem"));
}

TEST_F(TlsTest, CertificateWithoutKeyIsRefused) {
  EXPECT_THAT(LoadTlsConfig(TlsFiles{certs_->node.cert, "", ""}).status().message(),
              HasSubstr("without --tls_key"));
  EXPECT_THAT(LoadTlsConfig(TlsFiles{"", certs_->node.key, ""}).status().message(),
              HasSubstr("without --tls_cert"));
}

TEST_F(TlsTest, KeyOfAnotherCertificateIsRefused) {
  absl::Status status = LoadTlsConfig(TlsFiles{certs_->node.cert, certs_->admin.key, ""}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("does not belong to the certificate"));
}

TEST_F(TlsTest, SwappedFilesAreRefusedNamingTheFlag) {
  absl::Status status = LoadTlsConfig(TlsFiles{certs_->node.key, certs_->node.cert, ""}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--tls_cert"));
  EXPECT_THAT(status.message(), HasSubstr("no PEM certificate"));
  status = LoadTlsConfig(TlsFiles{"", "", certs_->node.key}).status();
  EXPECT_THAT(status.message(), HasSubstr("--tls_ca"));
}

TEST_F(TlsTest, ServerNeedsAnIdentity) {
  absl::StatusOr<TlsConfig> ca_only = LoadTlsConfig(TlsFiles{"", "", certs_->ca});
  ASSERT_TRUE(ca_only.ok());
  EXPECT_EQ(ServerCredentials(*ca_only).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ChannelCredentials(*ca_only), nullptr);
}

}  // namespace
}  // namespace txcoord::testing
