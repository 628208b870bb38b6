#include "cluster/settings.h"

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Stand-ins for the daemons' flags, which FlagDefaults reads by name.
ABSL_FLAG(absl::Duration, lock_timeout, absl::Seconds(5), "test");
ABSL_FLAG(absl::Duration, max_statement_time, absl::Seconds(10), "test");
ABSL_FLAG(absl::Duration, branch_idle_timeout, absl::Seconds(60), "test");
ABSL_FLAG(int32_t, outbox_max_attempts, 20, "test");
ABSL_FLAG(absl::Duration, outbox_max_backoff, absl::Seconds(30), "test");
ABSL_FLAG(absl::Duration, outbox_retention, absl::Hours(1), "test");

namespace txcoord::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr SettingRole kAgent = SettingRole::kAgent;
constexpr SettingRole kCoordinator = SettingRole::kCoordinator;

TEST(SettingsTest, EverySettingIsNamedOnceAndItsBoundsAreOrdered) {
  for (const SettingSpec& spec : AllSettings()) {
    EXPECT_EQ(FindSetting(spec.name), &spec) << spec.name;
    EXPECT_EQ(spec.min.type, spec.type) << spec.name;
    EXPECT_EQ(spec.max.type, spec.type) << spec.name;
    if (spec.type == SettingType::kDuration) {
      EXPECT_LE(spec.min.duration, spec.max.duration) << spec.name;
    } else {
      EXPECT_LE(spec.min.integer, spec.max.integer) << spec.name;
    }
    EXPECT_FALSE(spec.help.empty()) << spec.name;
  }
  EXPECT_THAT(SettingNames(kAgent),
              ElementsAre("lock_timeout", "max_statement_time", "branch_idle_timeout",
                          "outbox_max_attempts", "outbox_max_backoff", "outbox_retention"));
  EXPECT_THAT(SettingNames(kCoordinator),
              ElementsAre("tx_timeout", "prepare_timeout", "phase2_retry_max"));
}

TEST(SettingsTest, ValidDurationsAndIntegersParse) {
  EXPECT_EQ(*ValidateSetting(kAgent, "lock_timeout", "300ms"),
            SettingValue::Duration(absl::Milliseconds(300)));
  EXPECT_EQ(*ValidateSetting(std::nullopt, "lock_timeout", " 1.5s\n"),
            SettingValue::Duration(absl::Milliseconds(1500)));
  EXPECT_EQ(*ValidateSetting(kAgent, "outbox_max_attempts", "7"), SettingValue::Integer(7));
  EXPECT_EQ(*ValidateSetting(kCoordinator, "prepare_timeout", "2m"),
            SettingValue::Duration(absl::Minutes(2)));
}

TEST(SettingsTest, BoundsAreInclusive) {
  EXPECT_TRUE(ValidateSetting(kAgent, "lock_timeout", "10ms").ok());
  EXPECT_TRUE(ValidateSetting(kAgent, "lock_timeout", "60s").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "lock_timeout", "9ms").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "lock_timeout", "61s").ok());
  EXPECT_TRUE(ValidateSetting(kAgent, "outbox_max_attempts", "1").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "outbox_max_attempts", "0").ok());
}

TEST(SettingsTest, ZeroIsAllowedOnlyWhereItMeansSomething) {
  EXPECT_EQ(*ValidateSetting(kAgent, "max_statement_time", "0"),
            SettingValue::Duration(absl::ZeroDuration()));
  EXPECT_FALSE(ValidateSetting(kAgent, "max_statement_time", "1ms").ok());
  EXPECT_TRUE(ValidateSetting(kAgent, "branch_idle_timeout", "0s").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "lock_timeout", "0").ok());
  EXPECT_FALSE(ValidateSetting(kCoordinator, "tx_timeout", "0").ok());
}

TEST(SettingsTest, ErrorNamesTheSettingTheValueAndTheRange) {
  absl::StatusOr<SettingValue> banana = ValidateSetting(kAgent, "lock_timeout", "banana");
  ASSERT_EQ(banana.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(banana.status().message(),
            "invalid lock_timeout \"banana\": not a duration (like 300ms, 5s or 2m); allowed "
            "10ms..1m");
  absl::StatusOr<SettingValue> big = ValidateSetting(kAgent, "max_statement_time", "2h");
  EXPECT_EQ(big.status().message(),
            "invalid max_statement_time \"2h\": out of range; allowed 0 (no limit) or 100ms..1h");
  absl::StatusOr<SettingValue> words = ValidateSetting(kAgent, "outbox_max_attempts", "ten");
  EXPECT_EQ(words.status().message(),
            "invalid outbox_max_attempts \"ten\": not a whole number; allowed 1..10000");
}

TEST(SettingsTest, NegativeAndInfiniteDurationsAreRefused) {
  EXPECT_FALSE(ValidateSetting(kAgent, "outbox_retention", "-1s").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "outbox_retention", "inf").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "lock_timeout", "").ok());
  EXPECT_FALSE(ValidateSetting(kAgent, "lock_timeout", "5").ok());  // a unit is required
}

TEST(SettingsTest, UnknownSettingListsTheKnownOnes) {
  absl::StatusOr<SettingValue> unknown = ValidateSetting(kCoordinator, "lock_timeuot", "1s");
  ASSERT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "unknown setting \"lock_timeuot\"; known: tx_timeout, prepare_timeout, "
            "phase2_retry_max");
  EXPECT_THAT(ValidateSetting(std::nullopt, "x", "1").status().message(),
              HasSubstr("lock_timeout, max_statement_time"));
}

TEST(SettingsTest, ASettingOfTheOtherRoleIsRefused) {
  absl::StatusOr<SettingValue> wrong = ValidateSetting(kAgent, "tx_timeout", "10s");
  ASSERT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("tx_timeout is a coordinator setting, not an agent one"));
  EXPECT_TRUE(ValidateSetting(std::nullopt, "tx_timeout", "10s").ok());
}

TEST(SettingsTest, ValuesPrintAsTheirFlagsTakeThem) {
  EXPECT_EQ(SettingValue::Duration(absl::Milliseconds(300)).ToString(), "300ms");
  EXPECT_EQ(SettingValue::Duration(absl::Seconds(60)).ToString(), "1m");
  EXPECT_EQ(SettingValue::Duration(absl::ZeroDuration()).ToString(), "0");
  EXPECT_EQ(SettingValue::Integer(20).ToString(), "20");
  EXPECT_NE(SettingValue::Integer(0), SettingValue::Duration(absl::ZeroDuration()));
}

TEST(SettingsTest, FlagDefaultsReadTheFlagsByName) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_lock_timeout,
                absl::Milliseconds(1));  // outside the bounds: still the default
  absl::SetFlag(&FLAGS_outbox_max_attempts, 3);
  absl::StatusOr<std::map<std::string, SettingValue>> defaults = FlagDefaults(kAgent);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->size(), 6u);
  EXPECT_EQ(defaults->at("lock_timeout"), SettingValue::Duration(absl::Milliseconds(1)));
  EXPECT_EQ(defaults->at("outbox_max_attempts"), SettingValue::Integer(3));
  EXPECT_EQ(defaults->at("outbox_retention"), SettingValue::Duration(absl::Hours(1)));
}

TEST(SettingsTest, FlagDefaultsNameAMissingFlag) {
  absl::StatusOr<std::map<std::string, SettingValue>> defaults = FlagDefaults(kCoordinator);
  ASSERT_EQ(defaults.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(defaults.status().message(), HasSubstr("--tx_timeout"));
}

}  // namespace
}  // namespace txcoord::cluster
