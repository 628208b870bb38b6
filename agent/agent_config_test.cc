#include "agent/agent_config.h"

#include <memory>

#include "gtest/gtest.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using cluster::SettingValue;

class AgentConfigTest : public ParticipantTest {
 protected:
  void SetUp() override {
    ParticipantTest::SetUp();
    OutboxRelayOptions options;  // no broker: the relay only holds its policy
    absl::StatusOr<std::unique_ptr<OutboxRelay>> relay =
        OutboxRelay::Start(participant_.get(), options, nullptr);
    ASSERT_TRUE(relay.ok()) << relay.status();
    relay_ = *std::move(relay);
  }
  void TearDown() override {
    relay_.reset();
    ParticipantTest::TearDown();
  }

  absl::Status Apply(const std::string& name, const SettingValue& value) {
    return ApplyAgentSetting(participant_.get(), relay_.get(), name, value);
  }

  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(AgentConfigTest, EachSettingReachesTheParticipantOrTheRelay) {
  ASSERT_TRUE(Apply("lock_timeout", SettingValue::Duration(absl::Milliseconds(300))).ok());
  ASSERT_TRUE(Apply("max_statement_time", SettingValue::Duration(absl::ZeroDuration())).ok());
  ASSERT_TRUE(Apply("branch_idle_timeout", SettingValue::Duration(absl::Seconds(7))).ok());
  ASSERT_TRUE(Apply("outbox_max_attempts", SettingValue::Integer(3)).ok());
  ASSERT_TRUE(Apply("outbox_max_backoff", SettingValue::Duration(absl::Seconds(2))).ok());
  ASSERT_TRUE(Apply("outbox_retention", SettingValue::Duration(absl::Minutes(5))).ok());
  const ParticipantPolicy policy = participant_->policy();
  EXPECT_EQ(policy.default_lock_timeout, absl::Milliseconds(300));
  EXPECT_EQ(policy.max_statement_time, absl::ZeroDuration());
  EXPECT_EQ(policy.branch_idle_timeout, absl::Seconds(7));
  EXPECT_EQ(relay_->policy().max_attempts, 3);
  EXPECT_EQ(relay_->policy().max_backoff, absl::Seconds(2));
  EXPECT_EQ(relay_->retention(), absl::Minutes(5));
}

TEST_F(AgentConfigTest, ACoordinatorSettingIsRefused) {
  EXPECT_EQ(Apply("tx_timeout", SettingValue::Duration(absl::Seconds(1))).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(participant_->policy().default_lock_timeout, absl::Seconds(5));
}

}  // namespace
}  // namespace txcoord::participant::testing
