#include "common/check.h"

#include "gtest/gtest.h"

namespace txcoord {
namespace {

TEST(CheckTest, HoldingConditionIsEvaluatedOnceAndStreamsNothing) {
  int evaluated = 0;
  int streamed = 0;
  TXCOORD_CHECK(++evaluated == 1) << ++streamed;
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(streamed, 0);
}

TEST(CheckDeathTest, ViolatedConditionAbortsNamingConditionAndMessage) {
  const int votes = 2;
  EXPECT_DEATH(TXCOORD_CHECK(votes == 3) << "txid=t1 has " << votes << " votes",
               "check_test.cc:[0-9]+\\] Check failed: votes == 3: txid=t1 has 2 votes");
}

TEST(CheckTest, CheckIsOneStatementUnderAnUnbracedIf) {
  bool reached = false;
  if (reached)
    TXCOORD_CHECK(false) << "never evaluated";
  else
    reached = true;
  EXPECT_TRUE(reached);
}

TEST(CheckDeathTest, DcheckFollowsTheBuild) {
  if (TXCOORD_DCHECK_IS_ON()) {
    EXPECT_DEATH(TXCOORD_DCHECK(1 + 1 == 3), "Check failed: 1 \\+ 1 == 3");
  } else {
    int evaluated = 0;
    TXCOORD_DCHECK(++evaluated == 5);
    EXPECT_EQ(evaluated, 0);
  }
}

}  // namespace
}  // namespace txcoord
