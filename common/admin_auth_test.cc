#include "common/admin_auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kForceAbort[] = "/txcoord.v1.CoordinatorAdmin/ForceAbort";
constexpr char kResolveBranch[] = "/txcoord.v1.AgentAdmin/ResolveBranch";

TEST(IsAdminMethodTest, MatchesBothAdminServicesOnly) {
  EXPECT_TRUE(IsAdminMethod(kForceAbort));
  EXPECT_TRUE(IsAdminMethod(kResolveBranch));
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.Coordinator/Commit"));
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.Agent/Execute"));
  // A look-alike service name must not pass for an admin one, nor escape it.
  EXPECT_FALSE(IsAdminMethod("/txcoord.v1.CoordinatorAdminX/ForceAbort"));
  EXPECT_FALSE(IsAdminMethod("/grpc.health.v1.Health/Check"));
}

TEST(AdminPolicyTest, ParsesCommaSeparatedListIgnoringBlanks) {
  absl::StatusOr<AdminPolicy> policy = AdminPolicy::Parse(" operator , ops.example.com");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_THAT(policy->allowed(), ElementsAre("operator", "ops.example.com"));
}

TEST(AdminPolicyTest, EmptyFlagAllowsNobody) {
  absl::StatusOr<AdminPolicy> policy = AdminPolicy::Parse("");
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->allowed().empty());
  absl::Status status = policy->Check(kForceAbort, PeerIdentity{"operator", {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
}

TEST(AdminPolicyTest, RejectsEmptyEntriesAndOddCharacters) {
  EXPECT_EQ(AdminPolicy::Parse("operator,,ops").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminPolicy::Parse("ops team").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminPolicy::Parse("\"operator\"").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AdminPolicyTest, AllowsListedCommonNameExactly) {
  AdminPolicy policy = *AdminPolicy::Parse("operator");
  EXPECT_TRUE(policy.Check(kForceAbort, PeerIdentity{"operator", {}}).ok());
  EXPECT_FALSE(policy.Check(kForceAbort, PeerIdentity{"Operator", {}}).ok());
  EXPECT_FALSE(policy.Check(kForceAbort, PeerIdentity{"operator2", {}}).ok());
}

TEST(AdminPolicyTest, AllowsListedDnsNameIgnoringCase) {
  AdminPolicy policy = *AdminPolicy::Parse("ops.example.com");
  EXPECT_TRUE(
      policy.Check(kResolveBranch, PeerIdentity{"x", {"a.example.com", "OPS.example.com"}}).ok());
}

TEST(AdminPolicyTest, RefusalNamesMethodAndIdentitySeen) {
  AdminPolicy policy = *AdminPolicy::Parse("operator");
  absl::Status status = policy.Check(kForceAbort, PeerIdentity{"intruder", {"evil.example"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr(kForceAbort));
  EXPECT_THAT(status.message(), HasSubstr("CN=intruder DNS=evil.example"));
}

TEST(AdminPolicyTest, RefusalWithoutCertificateSaysSo) {
  AdminPolicy policy = *AdminPolicy::Parse("operator");
  absl::Status status = policy.Check(kForceAbort, PeerIdentity{});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("no client certificate"));
}

TEST(AdminPolicyTest, DataPathIsNotAffected) {
  AdminPolicy policy = *AdminPolicy::Parse("");
  EXPECT_TRUE(policy.Check("/txcoord.v1.Coordinator/Begin", PeerIdentity{}).ok());
}

}  // namespace
}  // namespace txcoord
