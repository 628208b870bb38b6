// The log's normal life: appends, group commit, what a crash keeps.
#include "coordinator/wal/log.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::FakeOptions;
using testing::FirstSyncGate;
using testing::kType;
using testing::OpenLog;
using testing::Payload;
using testing::Payloads;
using ::testing::UnorderedElementsAreArray;

TEST(WalLogTest, AppendedRecordsReplayInOrderAfterReopen) {
  FakeFileSystem fs;
  {
    testing::Opened opened = OpenLog(FakeOptions(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE((*opened.log)->AppendSync(kType, Payload(i)).ok());
    EXPECT_TRUE((*opened.log)->health().ok());
  }
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(100)));
  EXPECT_EQ((*opened.log)->stats().replayed, 100u);
}

TEST(WalLogTest, LoneAppendIsWrittenAndSyncedAtOnce) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  const auto before = fs.counters();
  ASSERT_TRUE((*opened.log)->AppendSync(kType, "alone").ok());
  EXPECT_EQ(fs.counters().writes - before.writes, 1u);
  EXPECT_EQ(fs.counters().syncs - before.syncs, 1u);
  const Log::Stats stats = (*opened.log)->stats();
  EXPECT_EQ(stats.records, 1u);
  EXPECT_EQ(stats.batches, 1u);
}

TEST(WalLogTest, QueuedAppendsShareOneWriteAndOneSync) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  FirstSyncGate gate(&fs);
  absl::BlockingCounter durable(65);
  std::atomic<int> failures{0};
  auto done = [&](absl::Status s) {
    if (!s.ok()) ++failures;
    durable.DecrementCount();
  };
  log.Append(kType, "first", /*sync=*/true, done);
  gate.WaitUntilWriterIsInside();
  const auto before = fs.counters();
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] { log.Append(kType, Payload(t), /*sync=*/true, done); });
  }
  for (auto& th : threads) th.join();  // all 64 are queued behind the gate
  gate.Release();
  durable.Wait();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(fs.counters().writes - before.writes, 1u);
  EXPECT_EQ(fs.counters().syncs - before.syncs, 2u);  // the gated one, then one for 64
  const Log::Stats stats = log.stats();
  EXPECT_EQ(stats.records, 65u);
  EXPECT_EQ(stats.batches, 2u);
}

TEST(WalLogTest, ManyThreadsAppendingConcurrentlyBatchAndAllSurviveACrash) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 200;
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  // The first fdatasync waits until every thread has queued a record, so at
  // least one batch is shared however the threads are scheduled.
  absl::BlockingCounter first_appends(kThreads);
  absl::Notification gate_open;
  fs.SetSyncHook([&](const std::string&) {
    if (!gate_open.HasBeenNotified()) {
      first_appends.Wait();
      gate_open.Notify();
    }
  });
  const uint64_t syncs_at_open = log.stats().syncs;
  std::atomic<int> failures{0};
  absl::BlockingCounter all_durable(kThreads * kPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        log.Append(kType, absl::StrCat(t, "/", i), /*sync=*/true, [&](absl::Status s) {
          if (!s.ok()) ++failures;
          all_durable.DecrementCount();
        });
        if (i == 0) first_appends.DecrementCount();
      }
    });
  }
  for (auto& th : threads) th.join();
  all_durable.Wait();
  EXPECT_EQ(failures, 0);
  const Log::Stats stats = log.stats();
  EXPECT_EQ(stats.records, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.batches, stats.records);
  EXPECT_EQ(stats.syncs - syncs_at_open, stats.batches);  // one fdatasync per batch

  fs.Crash();
  opened.log->reset();
  fs.SetSyncHook(nullptr);
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok());
  std::vector<std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) expected.push_back(absl::StrCat(t, "/", i));
  }
  EXPECT_THAT(reopened.replayed, UnorderedElementsAreArray(expected));
}

TEST(WalLogTest, CrashDropsUnsyncedRecordsButKeepsSyncedOnes) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  ASSERT_TRUE((*opened.log)->AppendSync(kType, "durable").ok());
  absl::Notification written;
  (*opened.log)->Append(kType, "volatile", /*sync=*/false, [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    written.Notify();
  });
  written.WaitForNotification();
  EXPECT_GT(fs.UnsyncedBytes(testing::SegmentPath(1)), 0u);
  fs.Crash();
  opened.log->reset();
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok());
  EXPECT_THAT(reopened.replayed, ElementsAre("durable"));
}

TEST(WalLogTest, UnsyncedRecordBecomesDurableWithTheNextSyncedBatch) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  (*opened.log)->Append(kType, "end", /*sync=*/false, nullptr);
  ASSERT_TRUE((*opened.log)->AppendSync(kType, "commit").ok());
  fs.Crash();
  opened.log->reset();
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok());
  EXPECT_THAT(reopened.replayed, ElementsAre("end", "commit"));
}

TEST(WalLogTest, UnsyncedOnlyBatchSkipsTheSyncButCleanCloseSyncs) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  const auto before = fs.counters();
  absl::Notification written;
  (*opened.log)->Append(kType, "not forced", /*sync=*/false, [&](absl::Status) {
    written.Notify();
  });
  written.WaitForNotification();
  EXPECT_EQ(fs.counters().syncs, before.syncs);
  opened.log->reset();
  EXPECT_EQ(fs.counters().syncs, before.syncs + 1);
  fs.Crash();
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok());
  EXPECT_THAT(reopened.replayed, ElementsAre("not forced"));
}

TEST(WalLogTest, BadTypeOrOversizedPayloadIsRefusedAndTheLogStaysHealthy) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  EXPECT_EQ(log.AppendSync(0, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.AppendSync(128, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.AppendSync(kType, std::string(kMaxPayloadBytes + 1, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(log.AppendSync(kType, std::string(kMaxPayloadBytes, 'x')).ok());
  EXPECT_TRUE(log.health().ok());
  EXPECT_EQ(log.stats().records, 1u);
}

TEST(WalLogTest, CallbacksRunOnTheWriterThreadWhereAppendSyncIsRefused) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  absl::Notification done;
  absl::Status from_callback;
  const std::thread::id test_thread = std::this_thread::get_id();
  log.Append(kType, "commit", /*sync=*/true, [&](absl::Status) {
    EXPECT_NE(std::this_thread::get_id(), test_thread);
    from_callback = log.AppendSync(kType, "nested");
    // Appending (without waiting) from a callback is how END follows COMMIT.
    log.Append(kType, "end", /*sync=*/false, [&](absl::Status) { done.Notify(); });
  });
  done.WaitForNotification();
  EXPECT_EQ(from_callback.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(WalLogTest, SyncObserverSeesEveryFsync) {
  FakeFileSystem fs;
  LogOptions options = FakeOptions(&fs);
  std::atomic<int> observed{0};
  options.sync_observer = [&](absl::Duration d) {
    EXPECT_GE(d, absl::ZeroDuration());
    ++observed;
  };
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  const int at_open = observed;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*opened.log)->AppendSync(kType, "x").ok());
  EXPECT_EQ(observed - at_open, 3);
  EXPECT_EQ(static_cast<uint64_t>(observed.load()), (*opened.log)->stats().syncs);
}

TEST(WalLogTest, AppendWaitsForRoomInsteadOfGrowingTheQueue) {
  FakeFileSystem fs;
  LogOptions options = FakeOptions(&fs);
  options.max_queued_bytes = 64;
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  FirstSyncGate gate(&fs);
  log.Append(kType, "held", /*sync=*/true, nullptr);
  gate.WaitUntilWriterIsInside();
  log.Append(kType, std::string(100, 'a'), /*sync=*/true, nullptr);  // fills the queue
  absl::Notification third_queued;
  std::thread producer([&] {
    log.Append(kType, "b", /*sync=*/true, nullptr);
    third_queued.Notify();
  });
  // The producer cannot get past Append while the writer is held; nothing
  // but releasing the writer lets it through.
  EXPECT_FALSE(third_queued.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  gate.Release();
  third_queued.WaitForNotification();
  producer.join();
  EXPECT_TRUE(log.AppendSync(kType, "c").ok());
}

}  // namespace
}  // namespace txcoord::wal
