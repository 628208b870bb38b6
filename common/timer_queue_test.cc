#include "common/timer_queue.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

// Keeps the timer thread busy in a timer of its own until `go` is notified:
// what is scheduled meanwhile cannot run yet, due or not.
void Occupy(TimerQueue& timers, absl::Notification& go) {
  auto busy = std::make_shared<absl::Notification>();
  timers.Schedule(absl::Now(), [busy, &go] {
    busy->Notify();
    go.WaitForNotification();
  });
  ASSERT_TRUE(busy->WaitForNotificationWithTimeout(kWait));
}

TEST(TimerQueueTest, RunsDueTimersInTimeOrder) {
  TimerQueue timers;
  // Otherwise the thread could run a due timer before the next arrives.
  absl::Notification go;
  Occupy(timers, go);
  absl::Mutex mu;
  std::vector<int> ran;
  absl::Notification done;
  const absl::Time now = absl::Now();
  // Scheduled out of order; all already due but the last.
  timers.Schedule(now - absl::Milliseconds(1), [&] {
    absl::MutexLock lock(&mu);
    ran.push_back(2);
  });
  timers.Schedule(now - absl::Milliseconds(3), [&] {
    absl::MutexLock lock(&mu);
    ran.push_back(1);
  });
  timers.Schedule(now + absl::Milliseconds(20), [&] {
    {
      absl::MutexLock lock(&mu);
      ran.push_back(3);
    }
    done.Notify();
  });
  go.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, CancelledTimerNeverRunsAndIsNoLongerPending) {
  TimerQueue timers;
  // The timer cancelled below is due at once but cannot run before that.
  absl::Notification go;
  Occupy(timers, go);
  std::atomic<bool> cancelled_ran{false};
  absl::Notification later_ran;
  const TimerQueue::Id id = timers.Schedule(absl::Now(), [&] { cancelled_ran = true; });
  EXPECT_EQ(timers.pending(), 1u);
  timers.Cancel(id);
  EXPECT_EQ(timers.pending(), 0u);
  // One due after it: once that ran, the cancelled one would have too.
  timers.Schedule(absl::Now() + absl::Milliseconds(1), [&] { later_ran.Notify(); });
  go.Notify();
  ASSERT_TRUE(later_ran.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(cancelled_ran);
}

TEST(TimerQueueTest, CancelAfterTheTimerRanIsANoOp) {
  TimerQueue timers;
  absl::Notification ran;
  const TimerQueue::Id id = timers.Schedule(absl::Now(), [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kWait));
  timers.Cancel(id);
  timers.Cancel(id);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, AnEarlierTimerWakesTheThreadSleepingForALaterOne) {
  TimerQueue timers;
  timers.Schedule(absl::Now() + absl::Hours(1), [] {});
  absl::Notification ran;
  timers.Schedule(absl::Now(), [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(timers.pending(), 1u);
}

TEST(TimerQueueTest, ManyCancelledTimersAreDroppedAndTheRestStillRun) {
  TimerQueue timers;
  std::vector<TimerQueue::Id> ids;
  for (int i = 0; i < 5000; ++i) {
    ids.push_back(timers.Schedule(absl::Now() + absl::Hours(1) + absl::Seconds(i), [] {}));
  }
  for (int i = 0; i < 4500; ++i) timers.Cancel(ids[i]);
  EXPECT_EQ(timers.pending(), 500u);
  // Without compaction all 5,000 slots would still be in the heap.
  EXPECT_LT(timers.slots(), 2500u);
  EXPECT_GE(timers.slots(), 500u);
  absl::Notification ran;
  timers.Schedule(absl::Now(), [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(timers.pending(), 500u);
}

}  // namespace
}  // namespace txcoord
