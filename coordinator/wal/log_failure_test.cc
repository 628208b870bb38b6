// Fail-stop: after a failed write or fdatasync, or a full disk, every
// in-flight and later append fails, and no acknowledged record is lost.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
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
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using testing::kType;
using testing::OpenLog;

absl::Status Eio(absl::string_view op) {
  return absl::Status(absl::StatusCode::kInternal, absl::StrCat(op, " /data/wal/x: I/O error"));
}

void ExpectLogFailed(const absl::Status& s, absl::string_view cause) {
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("log failed: "));
  EXPECT_THAT(s.message(), HasSubstr(cause));
}

TEST(WalFailureTest, FailedSyncFailsThatAppendAndEveryLaterOne) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  ASSERT_TRUE(log.AppendSync(kType, "before").ok());
  fs.InjectFault(FsOp::kSync, 1, Eio("fdatasync"));
  ExpectLogFailed(log.AppendSync(kType, "failed"), "fdatasync /data/wal/x: I/O error");
  ExpectLogFailed(log.health(), "I/O error");
  const auto after_failure = fs.counters();
  // The fault was one-shot: the disk would now work, and still nothing is
  // retried or written, because the state of the failed bytes is unknown.
  ExpectLogFailed(log.AppendSync(kType, "later"), "I/O error");
  absl::Notification unsynced_done;
  absl::Status unsynced;
  log.Append(kType, "later, unsynced", /*sync=*/false, [&](absl::Status s) {
    unsynced = s;
    unsynced_done.Notify();
  });
  unsynced_done.WaitForNotification();
  ExpectLogFailed(unsynced, "I/O error");
  opened.log->reset();
  EXPECT_EQ(fs.counters().writes, after_failure.writes);
  EXPECT_EQ(fs.counters().syncs, after_failure.syncs);
}

TEST(WalFailureTest, FailedWriteFailsTheLogForGood) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  fs.InjectFault(FsOp::kWrite, 1, Eio("write"));
  ExpectLogFailed(log.AppendSync(kType, "a"), "write /data/wal/x");
  ExpectLogFailed(log.AppendSync(kType, "b"), "write /data/wal/x");
  ExpectLogFailed(log.health(), "write /data/wal/x");
}

TEST(WalFailureTest, AppendsInFlightWhenTheSyncFailsGetTheErrorToo) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  Log& log = **opened.log;
  absl::Notification entered, release;
  fs.SetSyncHook([&](const std::string&) {
    if (entered.HasBeenNotified()) return;
    entered.Notify();
    release.WaitForNotification();
  });
  fs.InjectFault(FsOp::kSync, 1, Eio("fdatasync"));
  std::vector<absl::Status> results(11);
  absl::BlockingCounter all_done(11);
  for (int i = 0; i < 11; ++i) {
    log.Append(kType, absl::StrCat(i), /*sync=*/i % 2 == 0, [&, i](absl::Status s) {
      results[i] = s;
      all_done.DecrementCount();
    });
    if (i == 0) entered.WaitForNotification();  // the rest queue behind it
  }
  release.Notify();
  all_done.Wait();
  fs.SetSyncHook(nullptr);
  for (const absl::Status& s : results) ExpectLogFailed(s, "fdatasync");
}

TEST(WalFailureTest, DiskFullFailsTheLogAndReopenCutsThePartialRecord) {
  FakeFileSystem fs;
  {
    testing::Opened opened = OpenLog(FakeOptions(&fs));
    ASSERT_TRUE(opened.log.ok());
    Log& log = **opened.log;
    ASSERT_TRUE(log.AppendSync(kType, "fits").ok());
    fs.SetFreeBytes(20);
    absl::Status full = log.AppendSync(kType, std::string(100, 'f'));
    ExpectLogFailed(full, "No space left on device");
    EXPECT_THAT(full.message(), HasSubstr("RESOURCE_EXHAUSTED"));
    fs.SetFreeBytes(1 << 30);
    ExpectLogFailed(log.AppendSync(kType, "after space came back"), "No space left");
  }
  // The short write left 20 bytes of a record behind; it was never
  // acknowledged, so Open cuts it as a torn tail.
  testing::Opened reopened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(reopened.log.ok()) << reopened.log.status();
  EXPECT_THAT(reopened.replayed, ElementsAre("fits"));
  EXPECT_TRUE((*reopened.log)->AppendSync(kType, "works again").ok());
}

// One run of 24 appends (every third not synced) through several rotations
// with checkpoints, where every file operation from the nth on fails (a disk
// that died, or the process stopping there; 0: none), then a power loss.
struct Outcome {
  std::vector<std::string> must_survive;  // acknowledged and known durable
  size_t operations = 0;
  uint64_t appender_batches = 0;  // batches the appending thread wrote
  uint64_t preallocations = 0;    // zero fills written ahead of the appends
};

Outcome RunWorkload(FakeFileSystem* fs, const LogOptions& options, int fail_from,
                    bool appender_writes, std::vector<std::string>* acknowledged) {
  constexpr int kAppends = 24;
  Outcome outcome;
  std::vector<std::string> unsynced_acked;
  // Each append then writes and syncs its batch on this thread; rotations
  // stay the writer's.
  std::optional<WriteHereScope> write_here;
  if (appender_writes) write_here.emplace();
  {
    testing::Opened opened = OpenLog(options);
    EXPECT_TRUE(opened.log.ok());
    if (!opened.log.ok()) return outcome;
    fs->ClearTrace();
    if (fail_from > 0) fs->InjectFault(FsOp::kAny, fail_from, Eio("fault"), /*sticky=*/true);
    for (int i = 0; i < kAppends; ++i) {
      const std::string payload = absl::StrCat("r", i);
      const bool sync = i % 3 != 2;
      absl::Notification done;
      (*opened.log)->Append(kType, payload, sync, [&](absl::Status s) {
        if (s.ok()) {
          acknowledged->push_back(payload);
          // A record written without sync is durable once a later synced
          // record is acknowledged (or the log closes cleanly).
          if (!sync) {
            unsynced_acked.push_back(payload);
          } else {
            for (auto& p : unsynced_acked) outcome.must_survive.push_back(p);
            unsynced_acked.clear();
            outcome.must_survive.push_back(payload);
          }
        }
        done.Notify();
      });
      done.WaitForNotification();
    }
    outcome.appender_batches = (*opened.log)->stats().appender_batches;
    outcome.preallocations = (*opened.log)->stats().preallocations;
  }
  // Closed first, so that the writer is gone before the power is: with the
  // sticky fault, nothing after operation n reached the disk anyway.
  outcome.operations = fs->Trace().size();
  fs->Crash();
  fs->ClearFaults();
  return outcome;
}

void CheckAFaultAtEveryOperation(bool appender_writes, uint64_t preallocate_bytes = 0) {
  auto options_for = [preallocate_bytes](FakeFileSystem* fs,
                                         std::vector<std::string>* acknowledged) {
    LogOptions options = FakeOptions(fs);
    options.segment_bytes = 200;
    options.preallocate_bytes = preallocate_bytes;
    // The state a checkpoint must preserve: every acknowledged record.
    options.checkpoint = [acknowledged] {
      std::vector<Record> records;
      for (const std::string& p : *acknowledged) records.push_back(Record{kType, p});
      return records;
    };
    return options;
  };
  size_t total_operations;
  {
    FakeFileSystem fs;
    std::vector<std::string> acknowledged;
    const Outcome clean =
        RunWorkload(&fs, options_for(&fs, &acknowledged), 0, appender_writes, &acknowledged);
    total_operations = clean.operations;
    EXPECT_EQ(clean.appender_batches > 0, appender_writes);
    EXPECT_EQ(clean.preallocations > 0, preallocate_bytes > 0);
    testing::Opened reopened = OpenLog(options_for(&fs, &acknowledged));
    ASSERT_TRUE(reopened.log.ok());
    EXPECT_THAT(reopened.replayed, IsSupersetOf(acknowledged));
  }
  ASSERT_GT(total_operations, 40u);  // writes, syncs and rotations
  for (size_t n = 1; n <= total_operations; ++n) {
    SCOPED_TRACE(absl::StrCat("fault from operation ", n, " of ", total_operations));
    FakeFileSystem fs;
    std::vector<std::string> acknowledged;
    const Outcome outcome = RunWorkload(&fs, options_for(&fs, &acknowledged), static_cast<int>(n),
                                        appender_writes, &acknowledged);
    EXPECT_EQ(outcome.operations, n - 1);
    testing::Opened reopened = OpenLog(options_for(&fs, &acknowledged));
    ASSERT_TRUE(reopened.log.ok()) << reopened.log.status();
    EXPECT_THAT(reopened.replayed, IsSupersetOf(outcome.must_survive));
  }
}

TEST(WalFailureTest, AcknowledgedRecordsSurviveAFaultAtEveryOperation) {
  CheckAFaultAtEveryOperation(/*appender_writes=*/false);
}

TEST(WalFailureTest, AcknowledgedRecordsSurviveAFaultAtEveryOperationWhenAppendersWrite) {
  CheckAFaultAtEveryOperation(/*appender_writes=*/true);
}

// Zeros written ahead in pieces of 32 to 64 bytes: top-ups, rotations that
// cut them, and reopenings that cut and write them again, all faulted.
TEST(WalFailureTest, AcknowledgedRecordsSurviveAFaultAtEveryOperationWithZerosWrittenAhead) {
  CheckAFaultAtEveryOperation(/*appender_writes=*/false, /*preallocate_bytes=*/64);
  CheckAFaultAtEveryOperation(/*appender_writes=*/true, /*preallocate_bytes=*/64);
}

}  // namespace
}  // namespace txcoord::wal
