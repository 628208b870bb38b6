#include "cluster/config_watcher.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kKeys[] = "/t/config/orders/";

absl::Duration Ms(int64_t ms) { return absl::Milliseconds(ms); }

class ConfigWatcherTest : public ::testing::Test {
 protected:
  ConfigWatcherOptions Options() {
    ConfigWatcherOptions options;
    options.prefix = "/t";
    options.service = "orders";
    options.role = SettingRole::kAgent;
    options.defaults = {
        {"lock_timeout", SettingValue::Duration(absl::Seconds(5))},
        {"max_statement_time", SettingValue::Duration(absl::Seconds(10))},
        {"branch_idle_timeout", SettingValue::Duration(absl::Seconds(60))},
        {"outbox_max_attempts", SettingValue::Integer(20)},
        {"outbox_max_backoff", SettingValue::Duration(absl::Seconds(30))},
        {"outbox_retention", SettingValue::Duration(absl::Hours(1))},
    };
    options.resync_backoff = Ms(500);
    options.max_resync_backoff = absl::Seconds(4);
    options.metrics = &metrics_;
    options.metric_prefix = "txagent";
    return options;
  }

  void StartWatcher() {
    watcher_ = std::make_unique<ConfigWatcher>(
        &etcd_, &scheduler_, Options(), [this](const std::string& name, const SettingValue& v) {
          applied_.push_back(name + "=" + v.ToString());
        });
    ASSERT_TRUE(watcher_->Start().ok());
  }

  void Put(const std::string& name, const std::string& value) {
    ASSERT_TRUE(etcd_.Put(kKeys + name, value).ok());
  }

  // Lets the watch deliver what etcd has.
  void Deliver() { scheduler_.Advance(absl::ZeroDuration()); }

  std::string Current(const std::string& name) { return watcher_->Current().at(name).ToString(); }

  FakeScheduler scheduler_;
  MemoryEtcd etcd_{&scheduler_};
  MetricsRegistry metrics_;
  std::vector<std::string> applied_;
  std::unique_ptr<ConfigWatcher> watcher_;
};

TEST_F(ConfigWatcherTest, StartAppliesWhatEtcdHoldsAndOnlyWhatDiffers) {
  Put("lock_timeout", "2s");
  Put("outbox_max_attempts", "20");  // the default already: nothing to apply
  ASSERT_TRUE(etcd_.Put("/t/config/other/lock_timeout", "1s").ok());  // another service
  StartWatcher();
  EXPECT_THAT(applied_, ElementsAre("lock_timeout=2s"));
  EXPECT_EQ(Current("lock_timeout"), "2s");
  EXPECT_EQ(Current("max_statement_time"), "10s");
  EXPECT_TRUE(watcher_->stats().watching);
  EXPECT_EQ(watcher_->stats().revision, etcd_.revision());
}

TEST_F(ConfigWatcherTest, StartFailsWhenEtcdIsUnreachableAndAppliesNothing) {
  Put("lock_timeout", "2s");
  etcd_.SetAvailable(false);
  watcher_ = std::make_unique<ConfigWatcher>(
      &etcd_, &scheduler_, Options(),
      [this](const std::string& name, const SettingValue& v) { applied_.push_back(name); });
  absl::Status started = watcher_->Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(applied_, IsEmpty());
  EXPECT_EQ(Current("lock_timeout"), "5s");
}

TEST_F(ConfigWatcherTest, WatchedChangesApplyInOrder) {
  StartWatcher();
  Put("lock_timeout", "2s");
  Put("lock_timeout", "300ms");
  Put("outbox_max_attempts", "3");
  EXPECT_THAT(applied_, IsEmpty());  // not before the watch delivers
  Deliver();
  EXPECT_THAT(applied_,
              ElementsAre("lock_timeout=2s", "lock_timeout=300ms", "outbox_max_attempts=3"));
  EXPECT_EQ(watcher_->stats().applied, 3u);
  EXPECT_EQ(Current("lock_timeout"), "300ms");
}

TEST_F(ConfigWatcherTest, InvalidValueIsCountedAndTheLastValidOneStays) {
  StartWatcher();
  Put("lock_timeout", "2s");
  Put("lock_timeout", "banana");
  Put("lock_timeout", "2h");  // out of range
  Deliver();
  EXPECT_THAT(applied_, ElementsAre("lock_timeout=2s"));
  EXPECT_EQ(Current("lock_timeout"), "2s");
  EXPECT_EQ(watcher_->stats().rejected, 2u);
  EXPECT_THAT(metrics_.Render(), HasSubstr("txagent_config_rejected_total 2"));
  Put("lock_timeout", "1s");
  Deliver();
  EXPECT_EQ(Current("lock_timeout"), "1s");
}

TEST_F(ConfigWatcherTest, UnknownNamesAndOtherRolesSettingsAreRejected) {
  Put("lock_timeuot", "1s");
  StartWatcher();
  Put("tx_timeout", "10s");  // a coordinator's setting under an agent's service
  Deliver();
  EXPECT_THAT(applied_, IsEmpty());
  EXPECT_EQ(watcher_->stats().rejected, 2u);
  EXPECT_EQ(watcher_->Current().count("tx_timeout"), 0u);
}

TEST_F(ConfigWatcherTest, DeletedKeyGoesBackToTheFlagDefault) {
  Put("lock_timeout", "2s");
  StartWatcher();
  ASSERT_TRUE(etcd_.Delete(std::string(kKeys) + "lock_timeout").ok());
  Deliver();
  EXPECT_THAT(applied_, ElementsAre("lock_timeout=2s", "lock_timeout=5s"));
  EXPECT_EQ(Current("lock_timeout"), "5s");
}

TEST_F(ConfigWatcherTest, DeletingAnInvalidValueAfterAValidOneRestoresTheDefault) {
  StartWatcher();
  Put("lock_timeout", "2s");
  Put("lock_timeout", "-1s");
  ASSERT_TRUE(etcd_.Delete(std::string(kKeys) + "lock_timeout").ok());
  Deliver();
  EXPECT_THAT(applied_, ElementsAre("lock_timeout=2s", "lock_timeout=5s"));
}

TEST_F(ConfigWatcherTest, WatchErrorResyncsAfterBackoffKeepingValuesMeanwhile) {
  Put("lock_timeout", "2s");
  Put("outbox_retention", "10m");
  StartWatcher();
  etcd_.SetAvailable(false);
  Deliver();  // the watch ends
  EXPECT_FALSE(watcher_->stats().watching);
  EXPECT_THAT(metrics_.Render(), HasSubstr("txagent_config_watching 0"));
  EXPECT_EQ(Current("lock_timeout"), "2s");

  // Changed while no watch was open: seen by the re-read.
  etcd_.SetAvailable(true);
  Put("lock_timeout", "1s");
  ASSERT_TRUE(etcd_.Delete(std::string(kKeys) + "outbox_retention").ok());
  Put("max_statement_time", "nonsense");
  etcd_.SetAvailable(false);
  scheduler_.Advance(Ms(500));  // first re-read fails: etcd still down
  EXPECT_FALSE(watcher_->stats().watching);
  EXPECT_EQ(Current("lock_timeout"), "2s");
  etcd_.SetAvailable(true);
  scheduler_.Advance(Ms(999));  // the second waits twice as long
  EXPECT_FALSE(watcher_->stats().watching);
  scheduler_.Advance(Ms(1));
  EXPECT_TRUE(watcher_->stats().watching);
  EXPECT_THAT(applied_, ElementsAre("lock_timeout=2s", "outbox_retention=10m",
                                    "outbox_retention=1h", "lock_timeout=1s"));
  EXPECT_EQ(watcher_->stats().rejected, 1u);

  // Watching again from the re-read's revision, without replaying it.
  Put("lock_timeout", "3s");
  Deliver();
  EXPECT_EQ(Current("lock_timeout"), "3s");
  EXPECT_EQ(watcher_->stats().rejected, 1u);
  EXPECT_EQ(applied_.size(), 5u);
}

TEST_F(ConfigWatcherTest, ARereadDoesNotCountAnOldInvalidValueAgain) {
  Put("lock_timeout", "banana");
  StartWatcher();
  EXPECT_EQ(watcher_->stats().rejected, 1u);
  etcd_.SetAvailable(false);
  Deliver();
  etcd_.SetAvailable(true);
  scheduler_.Advance(Ms(500));
  EXPECT_TRUE(watcher_->stats().watching);
  EXPECT_EQ(watcher_->stats().rejected, 1u);
}

TEST_F(ConfigWatcherTest, CompactedWatchIsRecoveredByAReread) {
  StartWatcher();
  ASSERT_TRUE(etcd_.Compact(etcd_.revision()).ok());
  etcd_.SetAvailable(false);
  Deliver();
  etcd_.SetAvailable(true);
  Put("lock_timeout", "700ms");
  ASSERT_TRUE(
      etcd_.Compact(etcd_.revision()).ok());  // older revisions are gone: a re-read still works
  scheduler_.Advance(Ms(500));
  EXPECT_TRUE(watcher_->stats().watching);
  EXPECT_EQ(Current("lock_timeout"), "700ms");
}

TEST_F(ConfigWatcherTest, NoApplyAfterDestruction) {
  StartWatcher();
  Put("lock_timeout", "2s");  // queued for delivery
  watcher_.reset();
  Deliver();
  EXPECT_THAT(applied_, IsEmpty());
}

TEST_F(ConfigWatcherTest, DestructionCancelsAPendingReread) {
  StartWatcher();
  etcd_.SetAvailable(false);
  Deliver();
  etcd_.SetAvailable(true);
  Put("lock_timeout", "2s");
  watcher_.reset();
  scheduler_.Advance(absl::Seconds(10));
  EXPECT_THAT(applied_, IsEmpty());
  EXPECT_EQ(scheduler_.pending(), 0u);
}

}  // namespace
}  // namespace txcoord::cluster
