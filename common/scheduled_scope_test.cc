#include "common/scheduled_scope.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/fake_scheduler.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

TEST(ScheduledScopeTest, CallbacksRunAtTheirTimeWhileOpen) {
  FakeScheduler scheduler;
  ScheduledScope scope(&scheduler);
  std::vector<int> ran;
  scope.After(absl::Seconds(2), [&] { ran.push_back(2); });
  scope.After(absl::Seconds(1), [&] { ran.push_back(1); });
  scheduler.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(ran, std::vector<int>{1});
  scheduler.Advance(absl::Seconds(1));
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(ScheduledScopeTest, ClosingCancelsPendingTimersAndRefusesNewOnes) {
  FakeScheduler scheduler;
  ScheduledScope scope(&scheduler);
  bool ran = false;
  scope.After(absl::Seconds(1), [&] { ran = true; });
  scope.Close();
  EXPECT_EQ(scheduler.pending(), 0u);
  scope.After(absl::Seconds(1), [&] { ran = true; });
  EXPECT_EQ(scheduler.pending(), 0u);
  scheduler.Advance(absl::Seconds(5));
  EXPECT_FALSE(ran);
}

TEST(ScheduledScopeTest, BoundCompletionRunsOnTheSchedulerNotInsideTheCall) {
  FakeScheduler scheduler;
  ScheduledScope scope(&scheduler);
  std::string got;
  std::function<void(std::string)> done =
      scope.Bind<std::string>([&](std::string value) { got = std::move(value); });
  done("answer");
  EXPECT_EQ(got, "");
  scheduler.Advance(absl::ZeroDuration());
  EXPECT_EQ(got, "answer");
}

TEST(ScheduledScopeTest, CompletionCalledAfterTheScopeIsGoneIsDropped) {
  FakeScheduler scheduler;
  bool ran = false;
  std::function<void(int)> done;
  {
    ScheduledScope scope(&scheduler);
    done = scope.Bind<int>([&](int) { ran = true; });
  }
  done(1);
  EXPECT_EQ(scheduler.pending(), 0u);
  scheduler.Advance(absl::Seconds(1));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace txcoord
