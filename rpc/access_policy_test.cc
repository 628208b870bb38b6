#include "rpc/access_policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kForceAbort[] = "/txcoord.v1.CoordinatorAdmin/ForceAbort";
constexpr char kResolveBranch[] = "/txcoord.v1.AgentAdmin/ResolveBranch";
constexpr char kParticipantCommit[] = "/txcoord.v1.Participant/Commit";
constexpr char kEnlist[] = "/txcoord.v1.Coordinator/Enlist";
constexpr char kBegin[] = "/txcoord.v1.Coordinator/Begin";
constexpr char kExecute[] = "/txcoord.v1.Agent/Execute";

Caller WithCn(const std::string& cn) {
  Caller caller;
  caller.identity.common_name = cn;
  return caller;
}

Caller From(Locality locality) {
  Caller caller;
  caller.locality = locality;
  return caller;
}

AccessRules MutualTls() {
  AccessRules rules;
  rules.transport = Transport::kMutualTls;
  rules.operators = *IdentityList::Parse("--admin_allow", "operator");
  rules.coordinator = *IdentityList::Parse("--coordinator_identity", "txcoord");
  rules.services = *IdentityList::Parse("--service_allow", "orders-service");
  rules.agents = *IdentityList::Parse("--agent_identities", "agent-orders,agent-payments");
  rules.agent_names["orders"] = *IdentityList::Parse("--agent_identities", "agent-orders");
  rules.agent_names["payments"] = *IdentityList::Parse("--agent_identities", "agent-payments");
  return rules;
}

TEST(IsAdminMethodTest, MatchesBothAdminServicesOnly) {
  EXPECT_TRUE(IsAdminMethod(kForceAbort));
  EXPECT_TRUE(IsAdminMethod(kResolveBranch));
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.Coordinator/Commit"));
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.Agent/Execute"));
  // A look-alike service name must not pass for an admin one, nor escape it.
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.CoordinatorAdminX/ForceAbort"));
  EXPECT_FALSE(IsAdminMethod("/grpc.health.v1.Health/Check"));
}

TEST(RoleOfTest, WholeServicesMapToOneRoleSoNewMethodsAreCovered) {
  EXPECT_EQ(RoleOf(kForceAbort), Role::kOperator);
  EXPECT_EQ(RoleOf("/txcoord.v1.AgentAdmin/AnyMethodAddedLater"), Role::kOperator);
  EXPECT_EQ(RoleOf(kParticipantCommit), Role::kCoordinator);
  EXPECT_EQ(RoleOf("/txcoord.v1.Participant/AnyMethodAddedLater"), Role::kCoordinator);
  EXPECT_EQ(RoleOf(kEnlist), Role::kAgent);
  EXPECT_EQ(RoleOf("/txcoord.v1.Coordinator/EnlistBatch"), Role::kAgent);
  EXPECT_EQ(RoleOf("/txcoord.v1.Coordinator/QueryOutcome"), Role::kAgent);
  EXPECT_EQ(RoleOf(kBegin), Role::kService);
  EXPECT_EQ(RoleOf("/txcoord.v1.Agent/Publish"), Role::kService);
  EXPECT_EQ(RoleOf("/grpc.health.v1.Health/Check"), Role::kPublic);
  EXPECT_EQ(RoleOf("/txcoord.v1.ParticipantX/Commit"), Role::kUnknown);
  EXPECT_EQ(RoleOf("/txcoord.v2.Participant/Commit"), Role::kUnknown);
}

TEST(IdentityListTest, ParsesCommaSeparatedListIgnoringBlanks) {
  absl::StatusOr<IdentityList> list =
      IdentityList::Parse("--admin_allow", " operator , ops.example.com");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(list->identities(), ElementsAre("operator", "ops.example.com"));
}

TEST(IdentityListTest, EmptyAllowsNobodyAndStarAnyCertificate) {
  IdentityList nobody = *IdentityList::Parse("--admin_allow", "");
  EXPECT_FALSE(nobody.Contains(WithCn("operator").identity));
  IdentityList any = *IdentityList::Parse("--service_allow", "*");
  EXPECT_TRUE(any.Contains(WithCn("whoever").identity));
  // Any *certificate*: a caller without one is never on a list.
  EXPECT_FALSE(any.Contains(PeerIdentity{}));
}

TEST(IdentityListTest, RejectsEmptyEntriesOddCharactersAndAStarInAList) {
  EXPECT_EQ(IdentityList::Parse("--f", "operator,,ops").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdentityList::Parse("--f", "ops team").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdentityList::Parse("--f", "\"operator\"").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdentityList::Parse("--f", "operator,*").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IdentityListTest, MatchesCommonNameExactlyAndDnsNamesIgnoringCase) {
  IdentityList list = *IdentityList::Parse("--f", "operator,ops.example.com");
  EXPECT_TRUE(list.Contains(WithCn("operator").identity));
  EXPECT_FALSE(list.Contains(WithCn("Operator").identity));
  PeerIdentity dns;
  dns.common_name = "x";
  dns.dns_names = {"OPS.example.com"};
  EXPECT_TRUE(list.Contains(dns));
}

TEST(AccessPolicyTest, UnderMutualTlsEachRoleIsGrantedToItsIdentitiesOnly) {
  AccessPolicy policy(MutualTls());
  EXPECT_TRUE(policy.Check(kForceAbort, WithCn("operator")).ok());
  EXPECT_TRUE(policy.Check(kParticipantCommit, WithCn("txcoord")).ok());
  EXPECT_TRUE(policy.Check(kEnlist, WithCn("agent-orders")).ok());
  EXPECT_TRUE(policy.Check(kBegin, WithCn("orders-service")).ok());
  EXPECT_TRUE(policy.Check(kExecute, WithCn("orders-service")).ok());

  EXPECT_EQ(policy.Check(kParticipantCommit, WithCn("orders-service")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(policy.Check(kEnlist, WithCn("orders-service")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(policy.Check(kExecute, WithCn("txcoord")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(policy.Check(kForceAbort, WithCn("txcoord")).code(),
            absl::StatusCode::kPermissionDenied);
  // Being on loopback buys nothing under mutual TLS.
  Caller local = WithCn("orders-service");
  local.locality = Locality::kLoopback;
  EXPECT_EQ(policy.Check(kParticipantCommit, local).code(), absl::StatusCode::kPermissionDenied);
}

TEST(AccessPolicyTest, RefusalNamesMethodIdentityAndMissingRole) {
  AccessPolicy policy(MutualTls());
  absl::Status refused = policy.Check(kParticipantCommit, WithCn("orders-service"));
  EXPECT_THAT(refused.message(), HasSubstr(kParticipantCommit));
  EXPECT_THAT(refused.message(), HasSubstr("CN=orders-service"));
  EXPECT_THAT(refused.message(), HasSubstr("coordinator role"));
}

TEST(AccessPolicyTest, AgentsActOnlyForTheirOwnParticipantName) {
  AccessPolicy policy(MutualTls());
  EXPECT_TRUE(policy.CheckParticipant(kEnlist, "orders", WithCn("agent-orders")).ok());
  absl::Status refused = policy.CheckParticipant(kEnlist, "payments", WithCn("agent-orders"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("\"payments\""));
  EXPECT_EQ(policy.CheckParticipant(kEnlist, "unknown", WithCn("agent-orders")).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AccessPolicyTest, AdmitCountsAndRefusesOnce) {
  AccessPolicy policy(MutualTls());
  EXPECT_FALSE(policy.Admit(kParticipantCommit, WithCn("intruder")).ok());
  EXPECT_FALSE(policy.AdmitParticipant(kEnlist, "payments", WithCn("agent-orders")).ok());
  EXPECT_TRUE(policy.Admit(kParticipantCommit, WithCn("txcoord")).ok());
  EXPECT_EQ(policy.refused(Role::kCoordinator), 1u);
  EXPECT_EQ(policy.refused(Role::kAgent), 1u);
  EXPECT_EQ(policy.refused(Role::kService), 0u);
}

TEST(AccessPolicyTest, WithoutTlsParticipantAndAdminServeLoopbackOnly) {
  AccessPolicy policy{AccessRules{}};
  EXPECT_TRUE(policy.Check(kParticipantCommit, From(Locality::kLoopback)).ok());
  EXPECT_TRUE(policy.Check(kForceAbort, From(Locality::kLoopback)).ok());
  absl::Status refused = policy.Check(kParticipantCommit, From(Locality::kRemote));
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("--insecure_remote_participant"));
  EXPECT_EQ(policy.Check(kResolveBranch, From(Locality::kRemote)).code(),
            absl::StatusCode::kPermissionDenied);
  // The client path is served to every host.
  EXPECT_TRUE(policy.Check(kBegin, From(Locality::kRemote)).ok());
  EXPECT_TRUE(policy.Check(kExecute, From(Locality::kRemote)).ok());
  EXPECT_TRUE(policy.Check(kEnlist, From(Locality::kRemote)).ok());
  // Where the address is unknown (the TLS processor) the handler decides.
  EXPECT_TRUE(policy.Check(kParticipantCommit, From(Locality::kUnknown)).ok());
}

TEST(AccessPolicyTest, InsecureFlagsOpenEachRoleToRemotePeers) {
  AccessRules rules;
  rules.insecure_remote_participant = true;
  AccessPolicy participant_open(std::move(rules));
  EXPECT_TRUE(participant_open.Check(kParticipantCommit, From(Locality::kRemote)).ok());
  EXPECT_FALSE(participant_open.Check(kForceAbort, From(Locality::kRemote)).ok());
  AccessRules admin_rules;
  admin_rules.insecure_remote_admin = true;
  AccessPolicy admin_open(std::move(admin_rules));
  EXPECT_TRUE(admin_open.Check(kForceAbort, From(Locality::kRemote)).ok());
  EXPECT_FALSE(admin_open.Check(kParticipantCommit, From(Locality::kRemote)).ok());
}

TEST(AccessPolicyTest, ServerOnlyTlsRefusesTheAdminApiEvenOnLoopback) {
  AccessRules rules;
  rules.transport = Transport::kServerTls;
  AccessPolicy policy(std::move(rules));
  EXPECT_EQ(policy.Check(kForceAbort, From(Locality::kLoopback)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(policy.Check(kBegin, From(Locality::kRemote)).ok());
}

TEST(AccessPolicyTest, UnknownMethodsAreRefusedAndHealthChecksServed) {
  AccessPolicy policy(MutualTls());
  EXPECT_EQ(policy.Check("/other.Service/Do", WithCn("operator")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(policy.Check("/grpc.health.v1.Health/Check", WithCn("intruder")).ok());
}

TEST(LocalityOfPeerTest, TellsLoopbackFromRemote) {
  EXPECT_EQ(LocalityOfPeer("ipv4:127.0.0.1:5000"), Locality::kLoopback);
  EXPECT_EQ(LocalityOfPeer("ipv6:[::1]:5000"), Locality::kLoopback);
  EXPECT_EQ(LocalityOfPeer("ipv4:169.254.3.2:5000"), Locality::kRemote);
  EXPECT_EQ(LocalityOfPeer("ipv6:[fe80::1]:5000"), Locality::kRemote);
  EXPECT_EQ(LocalityOfPeer("ipv4:10.127.0.1:5000"), Locality::kRemote);
}

}  // namespace
}  // namespace txcoord
