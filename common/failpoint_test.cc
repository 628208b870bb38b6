#include "common/failpoint.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

class FailpointTest : public ::testing::Test {
 protected:
  ~FailpointTest() override { EXPECT_TRUE(ArmFailpoints("").ok()); }
};

TEST_F(FailpointTest, MalformedSpecificationsAreRefusedNamingTheItem) {
  EXPECT_THAT(ArmFailpoints("x").message(), HasSubstr("\"x\": expected name=crash|stall|delay:MS"));
  EXPECT_THAT(ArmFailpoints("x=explode").message(), HasSubstr("action must be crash, stall or"));
  EXPECT_THAT(ArmFailpoints("x=delay:").message(), HasSubstr("delay:MS (0 to 600000)"));
  EXPECT_THAT(ArmFailpoints("x=delay:-5").message(), HasSubstr("delay:MS (0 to 600000)"));
  EXPECT_THAT(ArmFailpoints("x=delay:600001").message(), HasSubstr("delay:MS (0 to 600000)"));
  EXPECT_THAT(ArmFailpoints("x=crash@0").message(), HasSubstr("@N needs N >= 1"));
}

TEST_F(FailpointTest, DelayHoldsTheThreadOnItsHitOnlyAndLetsItGoOn) {
  ASSERT_TRUE(ArmFailpoints("slow=delay:300@2").ok());
  absl::Time start = absl::Now();
  TXCOORD_FAILPOINT("slow");  // the first hit: not the one armed
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300));
  start = absl::Now();
  TXCOORD_FAILPOINT("slow");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  start = absl::Now();
  TXCOORD_FAILPOINT("slow");  // past it
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300));
}

TEST_F(FailpointTest, UnarmedNamesDoNothing) {
  ASSERT_TRUE(ArmFailpoints("other=crash").ok());
  TXCOORD_FAILPOINT("not-armed");
}

TEST_F(FailpointTest, AHookRunsOnEveryHitInsteadOfTheArmedActionUntilRemoved) {
  ASSERT_TRUE(ArmFailpoints("point=crash").ok());
  int hits = 0;
  SetFailpointHook("point", [&hits] { ++hits; });
  TXCOORD_FAILPOINT("point");
  TXCOORD_FAILPOINT("point");
  EXPECT_EQ(hits, 2);
  SetFailpointHook("point", nullptr);
  ASSERT_TRUE(ArmFailpoints("").ok());
  TXCOORD_FAILPOINT("point");  // neither hook nor action any more
  EXPECT_EQ(hits, 2);
}

TEST(FailpointDeathTest, CrashEndsTheProcessWithItsExitCode) {
  EXPECT_EXIT(
      {
        (void)ArmFailpoints("boom=crash");
        TXCOORD_FAILPOINT("boom");
      },
      ::testing::ExitedWithCode(kFailpointExitCode), "failpoint boom hit: crash");
}

}  // namespace
}  // namespace txcoord
