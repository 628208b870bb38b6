// The relay's decisions: per key one message at a time in commit order, a
// backing-off key holds back only its own, backoff doubles up to a cap, and
// a message is dead after its last allowed attempt.
#include "agent/relay_schedule.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::participant {
namespace {

using ::testing::ElementsAre;

const absl::Time kNow = absl::FromUnixSeconds(1000);

OutboxRow Row(int64_t seq, std::string key, absl::Time next_attempt = absl::InfinitePast()) {
  OutboxRow row;
  row.seq = seq;
  row.id = "m" + std::to_string(seq);
  row.message.key = std::move(key);
  row.next_attempt = next_attempt;
  return row;
}

TEST(RelayScheduleTest, PicksTheFirstPendingMessageOfEachKeyAndEveryUnkeyedOne) {
  const std::vector<OutboxRow> pending = {Row(1, "a"), Row(2, "a"), Row(3, "b"),
                                          Row(4, ""),  Row(5, ""),  Row(6, "b")};
  EXPECT_THAT(PickDue(pending, kNow, 100), ElementsAre(0, 2, 3, 4));
}

TEST(RelayScheduleTest, ABackingOffKeyHoldsBackOnlyItsOwnLaterMessages) {
  const std::vector<OutboxRow> pending = {Row(1, "a", kNow + absl::Seconds(1)), Row(2, "a"),
                                          Row(3, "b"), Row(4, "b")};
  EXPECT_THAT(PickDue(pending, kNow, 100), ElementsAre(2));
  EXPECT_EQ(NextDue(pending, kNow), kNow + absl::Seconds(1));
  EXPECT_THAT(PickDue(pending, kNow + absl::Seconds(1), 100), ElementsAre(0, 2));
}

TEST(RelayScheduleTest, PicksAtMostMaxInCommitOrder) {
  const std::vector<OutboxRow> pending = {Row(1, "a"), Row(2, "b"), Row(3, "c")};
  EXPECT_THAT(PickDue(pending, kNow, 2), ElementsAre(0, 1));
}

TEST(RelayScheduleTest, BackoffDoublesUpToTheCap) {
  RelayPolicy policy;
  policy.initial_backoff = absl::Milliseconds(100);
  policy.max_backoff = absl::Seconds(1);
  EXPECT_EQ(BackoffAfter(1, policy), absl::Milliseconds(100));
  EXPECT_EQ(BackoffAfter(2, policy), absl::Milliseconds(200));
  EXPECT_EQ(BackoffAfter(4, policy), absl::Milliseconds(800));
  EXPECT_EQ(BackoffAfter(5, policy), absl::Seconds(1));
  EXPECT_EQ(BackoffAfter(1000, policy), absl::Seconds(1));
}

TEST(RelayScheduleTest, AMessageIsDeadAfterItsLastAllowedAttempt) {
  RelayPolicy policy;
  policy.max_attempts = 3;
  OutboxRow row = Row(7, "k");
  row.attempts = 1;
  OutboxAttempt second = FailedAttempt(row, "refused", kNow, policy);
  EXPECT_FALSE(second.dead);
  EXPECT_FALSE(second.delivered);
  EXPECT_EQ(second.seq, 7);
  EXPECT_EQ(second.error, "refused");
  EXPECT_EQ(second.next_attempt, kNow + BackoffAfter(2, policy));
  row.attempts = 2;
  EXPECT_TRUE(FailedAttempt(row, "refused", kNow, policy).dead);
}

}  // namespace
}  // namespace txcoord::participant
