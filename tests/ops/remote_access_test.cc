// Without TLS, who may reach the participant service and the admin API
// over gRPC: a client in a network namespace this test makes (a veth
// pair, link-local addresses) is refused every method of Participant,
// AgentAdmin and CoordinatorAdmin and served the client path (Agent,
// Coordinator); with --insecure_remote_participant and
// --insecure_remote_admin it is served too, and the start logs warn.
// Needs root and ip; the client is harness/grpc_probe run with
// `ip netns exec`.
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/generic_call.h"
#include "harness/netns.h"
#include "txcoord/v1/admin.pb.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string PortOf(const std::string& address) { return address.substr(address.rfind(':') + 1); }

class RemoteAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanMakeNetns("ip")) GTEST_SKIP() << "needs root and ip (iproute2) for a network namespace";
    absl::StatusOr<std::string> build = BuildDir();
    ASSERT_TRUE(build.ok()) << build.status();
    probe_ = *build + "/harness/grpc_probe";
    ASSERT_EQ(access(probe_.c_str(), X_OK), 0) << probe_ << " is not built";
    netns_ = Netns::Make();
    ASSERT_NE(netns_, nullptr) << "could not make a network namespace with a veth pair";
    // Linked in for their descriptors, which MethodsOf reads.
    ASSERT_NE(v1::ListInDoubtRequest::descriptor(), nullptr);
    ASSERT_NE(v1::BeginRequest::descriptor(), nullptr);
  }

  // A plaintext cluster whose gRPC ports listen on every address.
  std::unique_ptr<Cluster> Start(std::vector<std::string> coordinator_flags,
                                 std::vector<std::string> agent_flags) {
    ClusterOptions options;
    options.agents = 1;
    options.coordinator_flags = {"--listen=0.0.0.0:0"};
    options.coordinator_flags.insert(options.coordinator_flags.end(), coordinator_flags.begin(),
                                     coordinator_flags.end());
    options.agent_flags = {"--listen=0.0.0.0:0"};
    options.agent_flags.insert(options.agent_flags.end(), agent_flags.begin(), agent_flags.end());
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    return cluster.ok() ? *std::move(cluster) : nullptr;
  }

  // Every method of `services` called from the namespace at `port` of this
  // side: method -> status code name.
  std::map<std::string, std::string> Probe(const std::string& port,
                                           const std::vector<std::string>& services) {
    std::vector<std::string> methods;
    for (const std::string& service : services) {
      std::vector<std::string> of = MethodsOf(service);
      EXPECT_FALSE(of.empty()) << service;
      methods.insert(methods.end(), of.begin(), of.end());
    }
    std::string output;
    EXPECT_EQ(netns_->Run(absl::StrCat(probe_, " ", netns_->host_ip(), ":", port, " ",
                                       absl::StrJoin(methods, " ")),
                          &output),
              0);
    std::map<std::string, std::string> codes;
    for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> parts = absl::StrSplit(line, ' ');
      codes[parts.first] = parts.second;
    }
    EXPECT_EQ(codes.size(), methods.size()) << output;
    return codes;
  }

  std::string probe_;
  std::unique_ptr<Netns> netns_;
};

TEST_F(RemoteAccessTest, WithoutTlsARemotePeerIsRefusedParticipantAndAdminButServedClientPath) {
  std::unique_ptr<Cluster> cluster = Start({}, {});
  ASSERT_NE(cluster, nullptr);
  const std::string agent_port = PortOf(cluster->agent_address(0));
  for (const auto& [method, code] :
       Probe(agent_port, {"txcoord.v1.Participant", "txcoord.v1.AgentAdmin"})) {
    EXPECT_EQ(code, "PERMISSION_DENIED") << method;
  }
  for (const auto& [method, code] : Probe(agent_port, {"txcoord.v1.Agent"})) {
    EXPECT_NE(code, "PERMISSION_DENIED") << method;
    EXPECT_NE(code, "UNAVAILABLE") << method;
  }
  const std::string coordinator_port = PortOf(cluster->coordinator_address());
  for (const auto& [method, code] : Probe(coordinator_port, {"txcoord.v1.CoordinatorAdmin"})) {
    EXPECT_EQ(code, "PERMISSION_DENIED") << method;
  }
  for (const auto& [method, code] : Probe(coordinator_port, {"txcoord.v1.Coordinator"})) {
    EXPECT_NE(code, "PERMISSION_DENIED") << method;
    EXPECT_NE(code, "UNAVAILABLE") << method;
  }
  EXPECT_THAT(ReadFile(cluster->agent_log(0)),
              HasSubstr("participant service (Participant.*) served to loopback peers only"));
  EXPECT_THAT(ReadFile(cluster->agent_log(0)),
              HasSubstr("admin API served to loopback peers only"));
  EXPECT_TRUE(cluster->StopAll().ok());
}

TEST_F(RemoteAccessTest, TheInsecureFlagsServeRemotePeersAndTheDaemonsWarn) {
  std::unique_ptr<Cluster> cluster = Start(
      {"--insecure_remote_admin"}, {"--insecure_remote_admin", "--insecure_remote_participant"});
  ASSERT_NE(cluster, nullptr);
  const std::string agent_port = PortOf(cluster->agent_address(0));
  for (const auto& [method, code] :
       Probe(agent_port, {"txcoord.v1.Participant", "txcoord.v1.AgentAdmin"})) {
    EXPECT_NE(code, "PERMISSION_DENIED") << method;
    EXPECT_NE(code, "UNAVAILABLE") << method;
  }
  for (const auto& [method, code] :
       Probe(PortOf(cluster->coordinator_address()), {"txcoord.v1.CoordinatorAdmin"})) {
    EXPECT_NE(code, "PERMISSION_DENIED") << method;
  }
  const std::string agent_log = ReadFile(cluster->agent_log(0));
  EXPECT_THAT(agent_log, HasSubstr("WARN"));
  EXPECT_THAT(agent_log, HasSubstr("--insecure_remote_participant: the participant service"));
  EXPECT_THAT(agent_log, HasSubstr("--insecure_remote_admin: the admin API is open to ANY host"));
  EXPECT_THAT(ReadFile(cluster->coordinator_log()),
              HasSubstr("--insecure_remote_admin: the admin API is open to ANY host"));
  EXPECT_TRUE(cluster->StopAll().ok());
}

}  // namespace
}  // namespace txcoord::testing
