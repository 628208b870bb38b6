// Batches written by the appending thread: an Append on a thread in a
// WriteHereScope that finds the log idle writes and syncs on that thread
// and answers before it returns; anything else queues for the writer, and
// nothing is lost or reordered either way.
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::ElementsAre;
using testing::FakeOptions;
using testing::FirstSyncGate;
using ::testing::IsSupersetOf;
using testing::kType;
using testing::OpenLog;

// What a fresh Open of `fs` replays (a failure, and nothing, if it fails).
std::vector<std::string> ReplayedOnReopen(FakeFileSystem* fs) {
  testing::Opened reopened = OpenLog(FakeOptions(fs));
  EXPECT_TRUE(reopened.log.ok()) << reopened.log.status();
  return reopened.replayed;
}

// Which thread ran a callback, and whether it had run when Append returned.
struct Answer {
  std::atomic<bool> called{false};
  std::thread::id thread;
  absl::Status status;
  absl::Notification notified;
  std::function<void(absl::Status)> Callback() {
    return [this](absl::Status s) {
      thread = std::this_thread::get_id();
      status = std::move(s);
      called = true;
      notified.Notify();
    };
  }
};

TEST(WalAppenderTest, AnAppendInTheScopeIsSyncedOnItsOwnThreadAndAnsweredBeforeItReturns) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  std::thread::id synced_on;
  fs.SetSyncHook([&](const std::string&) { synced_on = std::this_thread::get_id(); });
  const auto before = fs.counters();
  Answer answer;
  {
    WriteHereScope write_here;
    log.Append(kType, "decision", /*sync=*/true, answer.Callback());
  }
  ASSERT_TRUE(answer.called) << "not answered before Append returned";
  EXPECT_TRUE(answer.status.ok()) << answer.status;
  EXPECT_EQ(answer.thread, std::this_thread::get_id());
  EXPECT_EQ(synced_on, std::this_thread::get_id());
  EXPECT_EQ(fs.counters().writes - before.writes, 1u);
  EXPECT_EQ(fs.counters().syncs - before.syncs, 1u);
  EXPECT_EQ(log.stats().appender_batches, 1u);
  EXPECT_EQ(log.stats().batches, 1u);

  // Out of the scope, the writer thread writes it and answers later.
  Answer outside;
  log.Append(kType, "queued", /*sync=*/true, outside.Callback());
  outside.notified.WaitForNotification();
  EXPECT_NE(outside.thread, std::this_thread::get_id());
  EXPECT_EQ(log.stats().appender_batches, 1u);
  EXPECT_EQ(log.stats().batches, 2u);
  fs.SetSyncHook(nullptr);

  fs.Crash();
  opened.log->reset();
  EXPECT_THAT(ReplayedOnReopen(&fs), ElementsAre("decision", "queued"));
}

TEST(WalAppenderTest, WithTheOptionOffTheWriterWritesEveryBatch) {
  FakeFileSystem fs;
  LogOptions options = FakeOptions(&fs);
  options.appenders_write = false;
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  Answer answer;
  WriteHereScope write_here;
  (*opened.log)->Append(kType, "decision", /*sync=*/true, answer.Callback());
  answer.notified.WaitForNotification();
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  EXPECT_EQ((*opened.log)->stats().appender_batches, 0u);
}

TEST(WalAppenderTest, AnAppenderFindingABatchUnderWayOnlyQueuesBehindIt) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  // The writer is held inside the sync of a batch appended outside the scope.
  FirstSyncGate gate(&fs);
  log.Append(kType, "first", /*sync=*/true, nullptr);
  gate.WaitUntilWriterIsInside();
  Answer second;
  {
    WriteHereScope write_here;
    log.Append(kType, "second", /*sync=*/true, second.Callback());
  }
  EXPECT_FALSE(second.called) << "answered while the batch before it was still unsynced";
  gate.Release();
  second.notified.WaitForNotification();
  EXPECT_NE(second.thread, std::this_thread::get_id());
  EXPECT_EQ(log.stats().appender_batches, 0u);
  fs.SetSyncHook(nullptr);
  opened.log->reset();
  EXPECT_THAT(ReplayedOnReopen(&fs), ElementsAre("first", "second"));
}

TEST(WalAppenderTest, ACallbackOfAnAppendersBatchQueuesWhatItAppendsForTheWriter) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  absl::Status nested_sync;
  Answer end;
  {
    WriteHereScope write_here;
    log.Append(kType, "commit", /*sync=*/true, [&](absl::Status s) {
      EXPECT_TRUE(s.ok());
      // Waiting here would wait for the batch this callback belongs to.
      nested_sync = log.AppendSync(kType, "nested");
      log.Append(kType, "end", /*sync=*/false, end.Callback());
    });
  }
  EXPECT_EQ(nested_sync.code(), absl::StatusCode::kFailedPrecondition) << nested_sync;
  end.notified.WaitForNotification();
  EXPECT_NE(end.thread, std::this_thread::get_id());
  EXPECT_EQ(log.stats().appender_batches, 1u);
  opened.log->reset();
  EXPECT_THAT(ReplayedOnReopen(&fs), ElementsAre("commit", "end"));
}

TEST(WalAppenderTest, AFailedSyncOnTheAppendersThreadFailsTheLogForGood) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  fs.InjectFault(FsOp::kSync, 1, absl::InternalError("fdatasync /data/wal/x: I/O error"));
  WriteHereScope write_here;
  Answer failed;
  log.Append(kType, "a", /*sync=*/true, failed.Callback());
  ASSERT_TRUE(failed.called);
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kFailedPrecondition) << failed.status;
  EXPECT_EQ(failed.thread, std::this_thread::get_id());
  const auto after_failure = fs.counters();
  // A failed log is never written again, by its writer or by an appender.
  EXPECT_EQ(log.AppendSync(kType, "b").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log.health().code(), absl::StatusCode::kFailedPrecondition);
  opened.log->reset();
  EXPECT_EQ(fs.counters().writes, after_failure.writes);
  EXPECT_EQ(fs.counters().syncs, after_failure.syncs);
}

TEST(WalAppenderTest, ARecordNobodyWaitsForIsWrittenByItsCallerWhenNothingElseIsQueued) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  const auto before = fs.counters();
  // No scope, no sync, no callback: one write call on this thread.
  log.Append(kType, "end", /*sync=*/false, nullptr);
  EXPECT_EQ(fs.counters().writes - before.writes, 1u) << "not written before Append returned";
  EXPECT_EQ(fs.counters().syncs, before.syncs);
  EXPECT_EQ(log.stats().appender_batches, 1u);
  // With a callback, the writer writes it and answers.
  Answer answer;
  log.Append(kType, "watched", /*sync=*/false, answer.Callback());
  answer.notified.WaitForNotification();
  EXPECT_NE(answer.thread, std::this_thread::get_id());
  EXPECT_EQ(log.stats().appender_batches, 1u);
  // Written, not synced, until the next synced batch.
  EXPECT_GT(fs.UnsyncedBytes(testing::SegmentPath(1)), 0u);
  ASSERT_TRUE(log.AppendSync(kType, "commit").ok());
  fs.Crash();
  opened.log->reset();
  EXPECT_THAT(ReplayedOnReopen(&fs), ElementsAre("end", "watched", "commit"));
}

TEST(WalAppenderTest, ARecordNobodyWaitsForQueuesBehindABatchUnderWay) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  FirstSyncGate gate(&fs);
  Answer first;
  log.Append(kType, "first", /*sync=*/true, first.Callback());
  gate.WaitUntilWriterIsInside();
  const auto before = fs.counters();
  log.Append(kType, "end", /*sync=*/false, nullptr);
  EXPECT_EQ(fs.counters().writes, before.writes) << "written while another batch was unsynced";
  gate.Release();
  first.notified.WaitForNotification();
  ASSERT_TRUE(log.AppendSync(kType, "last").ok());
  EXPECT_EQ(log.stats().appender_batches, 0u);
  fs.SetSyncHook(nullptr);
  opened.log->reset();
  EXPECT_THAT(ReplayedOnReopen(&fs), ElementsAre("first", "end", "last"));
}

TEST(WalAppenderTest, SegmentsFilledByAppendersAreRotatedByTheWriterAndNothingIsLost) {
  FakeFileSystem fs;
  std::vector<std::string> acknowledged;
  absl::Mutex mu;
  LogOptions options = FakeOptions(&fs);
  options.segment_bytes = 200;
  options.checkpoint = [&] {
    absl::MutexLock lock(&mu);
    std::vector<Record> records;
    for (const std::string& p : acknowledged) records.push_back(Record{kType, p});
    return records;
  };
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  {
    WriteHereScope write_here;
    for (int i = 0; i < 40; ++i) {
      const std::string payload = absl::StrCat("r", i);
      absl::Notification answered;
      log.Append(kType, payload, /*sync=*/true, [&, payload](absl::Status s) {
        EXPECT_TRUE(s.ok()) << s;
        absl::MutexLock lock(&mu);
        acknowledged.push_back(payload);
        answered.Notify();
      });
      // Written here, or behind the writer's rotation.
      answered.WaitForNotification();
    }
  }
  ASSERT_TRUE(log.AppendSync(kType, "last").ok());
  const Log::Stats stats = log.stats();
  EXPECT_GT(stats.appender_batches, 0u);
  EXPECT_GE(stats.rotations, 5u);
  EXPECT_LE(stats.segments, 2u);
  std::vector<std::string> expected;
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(acknowledged.size(), 40u);
    expected = acknowledged;
  }
  fs.Crash();
  opened.log->reset();
  testing::Opened reopened = OpenLog(options);
  ASSERT_TRUE(reopened.log.ok()) << reopened.log.status();
  EXPECT_THAT(reopened.replayed, IsSupersetOf(expected));
}

TEST(WalAppenderTest, ThreadsInAndOutOfTheScopeAtOnceKeepEachThreadsOrderAndLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 150;
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  std::atomic<int> failures{0};
  absl::BlockingCounter answered(kThreads * kPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::optional<WriteHereScope> write_here;
      if (t % 2 == 0) write_here.emplace();
      for (int i = 0; i < kPerThread; ++i) {
        log.Append(kType, absl::StrCat(t, "/", i), /*sync=*/i % 4 != 3, [&](absl::Status s) {
          if (!s.ok()) ++failures;
          answered.DecrementCount();
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  answered.Wait();
  EXPECT_EQ(failures, 0);
  const Log::Stats stats = log.stats();
  EXPECT_EQ(stats.records, static_cast<uint64_t>(kThreads * kPerThread));
  // How many batches appenders wrote depends on the scheduling (the tests
  // above take each path for certain); this one asks that none is lost.
  opened.log->reset();  // a clean close syncs the unsynced tail
  fs.Crash();
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok());
  ASSERT_EQ(reopened.replayed.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const std::string& record : reopened.replayed) {
    const size_t slash = record.find('/');
    const int t = std::stoi(record.substr(0, slash));
    EXPECT_EQ(std::stoi(record.substr(slash + 1)), next[t]) << "thread " << t << " out of order";
    next[t] = std::stoi(record.substr(slash + 1)) + 1;
  }
}

}  // namespace
}  // namespace txcoord::wal
