// Who may use the HTTP port's admin routes, against real daemons:
// - with mutual TLS, a client certificate whose identity is on
//   --admin_allow (others get 403; a client without a certificate gets no
//   TLS session at all), while any certificate the CA signed may use the
//   data routes;
// - without TLS, loopback only: a client in a network namespace this test
//   makes (a veth pair, link-local addresses) is refused the admin routes
//   and served the data routes, and with --http_admin_insecure_remote it is
//   served both while the daemon's start log warns.
#include <sys/types.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "harness/netns.h"
#include "harness/temp_dir.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/ops/test_certs.h"

namespace txcoord::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::pair<std::string, int> HostPort(const std::string& address) {
  std::pair<std::string, std::string> parts = absl::StrSplit(address, absl::MaxSplits(':', 1));
  return {parts.first, std::atoi(parts.second.c_str())};
}

// The "code" of an error body, or "" for anything else.
std::string CodeOf(const httplib::Result& res) {
  if (!res) return "";
  nlohmann::json body = nlohmann::json::parse(res->body, nullptr, false);
  return body.is_object() && body.contains("code") ? body["code"].get<std::string>() : "";
}

TEST(HttpAccessTest, OverHttpsAdminRoutesNeedAnIdentityOnTheAllowList) {
  // A refused handshake closes the socket under the client's request.
  std::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<TempDir> dir = TempDir::Create("txcoord-http-tls");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir->path());
  ASSERT_TRUE(certs.ok()) << certs.status();
  ClusterOptions options;
  options.agents = 1;
  options.http = true;
  options.coordinator_flags = certs->DaemonFlags("operator");
  options.agent_flags = certs->AgentFlags("operator");
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const auto [host, port] = HostPort((*cluster)->coordinator_http_address());

  auto client = [&, host = host, port = port](const TlsFiles& who) {
    auto c = std::make_unique<httplib::SSLClient>(host, port, who.cert, who.key);
    c->set_ca_cert_path(certs->ca.c_str());
    c->enable_server_certificate_verification(true);
    return c;
  };
  // The operator may list; a service's certificate may not, but may begin.
  auto op = client(certs->admin);
  httplib::Result listed = op->Get("/v1/admin/transactions");
  ASSERT_TRUE(listed) << httplib::to_string(listed.error());
  EXPECT_EQ(listed->status, 200) << listed->body;

  auto service = client(certs->service);
  httplib::Result refused = service->Get("/v1/admin/transactions");
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_EQ(CodeOf(refused), "PERMISSION_DENIED");
  EXPECT_TRUE(absl::StrContains(refused->body, "CN=orders-service")) << refused->body;
  httplib::Result begun = service->Post("/v1/transactions", "{}", "application/json");
  ASSERT_TRUE(begun) << httplib::to_string(begun.error());
  EXPECT_EQ(begun->status, 200) << begun->body;

  // A certificate another CA signed, or none at all: no TLS session.
  auto rogue = client(certs->rogue);
  EXPECT_FALSE(rogue->Get("/v1/admin/transactions"));
  httplib::SSLClient anonymous(host, port);
  anonymous.set_ca_cert_path(certs->ca.c_str());
  anonymous.enable_server_certificate_verification(true);
  EXPECT_FALSE(anonymous.Get("/v1/transactions/x"));
  // The same rules at the agent.
  const auto [agent_host, agent_port] = HostPort((*cluster)->agent_http_address(0));
  httplib::SSLClient agent(agent_host, agent_port, certs->service.cert, certs->service.key);
  agent.set_ca_cert_path(certs->ca.c_str());
  httplib::Result in_doubt = agent.Get("/v1/admin/in-doubt");
  ASSERT_TRUE(in_doubt);
  EXPECT_EQ(in_doubt->status, 403) << in_doubt->body;
  EXPECT_TRUE((*cluster)->StopAll().ok());
}

class HttpRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanMakeNetns("ip curl")) {
      GTEST_SKIP() << "needs root, ip (iproute2) and curl to make a network namespace";
    }
    netns_ = Netns::Make();
    ASSERT_NE(netns_, nullptr) << "could not make a network namespace with a veth pair";
  }

  // A coordinator whose HTTP port listens on every address, so that the
  // namespace reaches it at this side's veth address.
  std::unique_ptr<Cluster> Start(std::vector<std::string> flags) {
    ClusterOptions options;
    options.agents = 1;
    options.http = true;
    options.http_host = "0.0.0.0";
    options.coordinator_flags = std::move(flags);
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    return cluster.ok() ? *std::move(cluster) : nullptr;
  }

  std::string RemoteUrl(const Cluster& cluster, const std::string& path) const {
    return absl::StrCat("http://", netns_->host_ip(), ":",
                        HostPort(cluster.coordinator_http_address()).second, path);
  }

  std::unique_ptr<Netns> netns_;
};

TEST_F(HttpRemoteTest, WithoutTlsAdminRoutesServeLoopbackOnlyAndDataRoutesEveryone) {
  std::unique_ptr<Cluster> cluster = Start({});
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(netns_->Curl("GET", RemoteUrl(*cluster, "/v1/admin/transactions")), "403");
  EXPECT_EQ(netns_->Curl("POST", RemoteUrl(*cluster, "/v1/admin/transactions/x.1.1/retry")), "403");
  EXPECT_EQ(netns_->Curl("POST", RemoteUrl(*cluster, "/v1/transactions")), "200");
  // The same daemon serves its admin routes to loopback.
  const auto [host, port] = HostPort(cluster->coordinator_http_address());
  httplib::Client local("127.0.0.1", port);
  httplib::Result listed = local.Get("/v1/admin/transactions");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  EXPECT_TRUE(absl::StrContains(ReadFile(cluster->coordinator_log()),
                                "the admin endpoints and console are served to loopback only"));
  EXPECT_TRUE(cluster->StopAll().ok());
}

TEST_F(HttpRemoteTest, TheInsecureFlagOpensAdminRoutesToEveryoneAndTheDaemonWarns) {
  std::unique_ptr<Cluster> cluster = Start({"--http_admin_insecure_remote"});
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(netns_->Curl("GET", RemoteUrl(*cluster, "/v1/admin/transactions")), "200");
  const std::string log = ReadFile(cluster->coordinator_log());
  EXPECT_TRUE(absl::StrContains(log, "WARN")) << log;
  EXPECT_TRUE(absl::StrContains(log, "open to ANY host")) << log;
  EXPECT_TRUE(cluster->StopAll().ok());
}

}  // namespace
}  // namespace txcoord::testing
