// Rotation: new segments appear whole (tmp + rename + dir sync), start with
// the checkpoint, and make every older segment deletable; disk use stays
// bounded; a damaged or missing earlier segment refuses to open.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::FakeOptions;
using ::testing::HasSubstr;
using testing::kDir;
using testing::kType;
using testing::OpenLog;
using testing::SegmentPath;

std::vector<std::string> DirEntries(FakeFileSystem* fs) {
  std::vector<std::string> names;
  EXPECT_TRUE(fs->ListDir(kDir, &names).ok());
  std::sort(names.begin(), names.end());
  return names;
}

// A coordinator in miniature: "open:k" starts a transaction, "close:k" ends
// it; the checkpoint re-logs the open ones. Everything runs on the writer
// thread (done callbacks and checkpoint), so no lock is needed.
struct Model {
  std::set<int> open;
  std::vector<std::string> last_checkpoint;
  std::vector<std::string> since_checkpoint;  // records after it, in order
  int checkpoints = 0;

  void Apply(const std::string& record) {
    const int k = std::stoi(record.substr(record.find(':') + 1));
    if (absl::StartsWith(record, "open:")) {
      open.insert(k);
    } else {
      open.erase(k);
    }
  }
  std::vector<Record> Checkpoint() {
    ++checkpoints;
    last_checkpoint.clear();
    since_checkpoint.clear();
    std::vector<Record> records;
    for (int k : open) {
      records.push_back(Record{kType, absl::StrCat("open:", k)});
      last_checkpoint.push_back(records.back().payload);
    }
    return records;
  }
};

LogOptions ModelOptions(FakeFileSystem* fs, Model* model, uint64_t segment_bytes) {
  LogOptions options = FakeOptions(fs);
  options.segment_bytes = segment_bytes;
  options.checkpoint = [model] { return model->Checkpoint(); };
  return options;
}

// Opens transaction i and closes i-3: about three stay open at any time.
absl::Status Step(Log& log, Model& model, int i) {
  for (const std::string& record : {absl::StrCat("open:", i), absl::StrCat("close:", i - 3)}) {
    absl::Status result;
    absl::Notification done;
    log.Append(kType, record, /*sync=*/true, [&, record](absl::Status s) {
      if (s.ok()) {
        model.Apply(record);
        model.since_checkpoint.push_back(record);
      }
      result = s;
      done.Notify();
    });
    done.WaitForNotification();
    if (!result.ok()) return result;
  }
  return absl::OkStatus();
}

TEST(WalRotationTest, NewSegmentIsWrittenUnderTmpNameRenamedAndDirSyncedBeforeOldOnesGo) {
  FakeFileSystem fs;
  Model model;
  LogOptions options = ModelOptions(&fs, &model, 256);
  size_t trace_at_checkpoint = 0;
  options.checkpoint = [&] {
    trace_at_checkpoint = fs.Trace().size();
    return model.Checkpoint();
  };
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  fs.ClearTrace();
  // The rotation that a batch triggers is finished before the next batch.
  for (int i = 0; (*opened.log)->stats().rotations == 0; ++i) {
    ASSERT_TRUE(Step(**opened.log, model, i).ok());
  }
  const std::vector<std::string> trace = fs.Trace();
  const std::string tmp = SegmentPath(2) + ".tmp";
  auto at = [&](const std::string& op, size_t from = 0) {
    auto it = std::find(trace.begin() + from, trace.end(), op);
    EXPECT_NE(it, trace.end()) << op;
    return static_cast<size_t>(it - trace.begin());
  };
  const size_t create = at("create " + tmp);
  const size_t write = at("write " + tmp);
  const size_t sync = at("sync " + tmp);
  const size_t rename = at("rename " + tmp + " " + SegmentPath(2));
  const size_t dir_sync = at(absl::StrCat("syncdir ", kDir), rename);
  const size_t remove = at("remove " + SegmentPath(1));
  const size_t dir_sync_after_remove = at(absl::StrCat("syncdir ", kDir), remove);
  EXPECT_LE(trace_at_checkpoint, create);
  EXPECT_LT(create, write);
  EXPECT_LT(write, sync);
  EXPECT_LT(sync, rename);
  EXPECT_LT(rename, dir_sync);
  EXPECT_LT(dir_sync, remove);
  EXPECT_LT(remove, dir_sync_after_remove);
  EXPECT_THAT(DirEntries(&fs), ElementsAre("0000000000000002.wal"));
}

TEST(WalRotationTest, ReplayYieldsTheCheckpointThenLaterRecordsAndOnlyLiveSegmentsRemain) {
  FakeFileSystem fs;
  Model model;
  {
    testing::Opened opened = OpenLog(ModelOptions(&fs, &model, 512));
    ASSERT_TRUE(opened.log.ok());
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(Step(**opened.log, model, i).ok());
    EXPECT_GT((*opened.log)->stats().rotations, 10u);
  }
  EXPECT_GT(model.checkpoints, 10);
  const std::vector<std::string> entries = DirEntries(&fs);
  ASSERT_EQ(entries.size(), 1u) << "only the live segment remains";
  EXPECT_TRUE(absl::EndsWith(entries[0], ".wal"));

  std::vector<std::string> expected = model.last_checkpoint;
  expected.insert(expected.end(), model.since_checkpoint.begin(), model.since_checkpoint.end());
  Model rebuilt;
  testing::Opened reopened = OpenLog(ModelOptions(&fs, &rebuilt, 512));
  ASSERT_TRUE(reopened.log.ok());
  EXPECT_THAT(reopened.replayed, ElementsAreArray(expected));
  for (const std::string& r : reopened.replayed) rebuilt.Apply(r);
  EXPECT_EQ(rebuilt.open, model.open);
}

TEST(WalRotationTest, DiskUseStaysBoundedUnderAnEndlessWorkload) {
  constexpr uint64_t kSegmentBytes = 4096;
  FakeFileSystem fs;
  Model model;
  testing::Opened opened = OpenLog(ModelOptions(&fs, &model, kSegmentBytes));
  ASSERT_TRUE(opened.log.ok());
  uint64_t most_bytes = 0, most_segments = 0;
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(Step(**opened.log, model, i).ok());
    const Log::Stats stats = (*opened.log)->stats();
    most_bytes = std::max(most_bytes, stats.bytes);
    most_segments = std::max(most_segments, stats.segments);
  }
  EXPECT_GT((*opened.log)->stats().rotations, 20u);
  EXPECT_EQ(most_segments, 1u);
  // One segment past its limit by at most one batch (here one record).
  EXPECT_LT(most_bytes, kSegmentBytes + 64);
  EXPECT_LE(DirEntries(&fs).size(), 3u);  // the live one, perhaps mid-rotation
}

TEST(WalRotationTest, WithoutACheckpointOldSegmentsAreKeptAndAllReplayed) {
  FakeFileSystem fs;
  LogOptions options = FakeOptions(&fs);
  options.segment_bytes = 200;
  {
    testing::Opened opened = OpenLog(options);
    ASSERT_TRUE(opened.log.ok());
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE((*opened.log)->AppendSync(kType, testing::Payload(i)).ok());
    EXPECT_GT((*opened.log)->stats().segments, 5u);
  }
  testing::Opened reopened = OpenLog(options);
  ASSERT_TRUE(reopened.log.ok());
  EXPECT_THAT(reopened.replayed, ElementsAreArray(testing::Payloads(100)));
}

TEST(WalRotationTest, UnsyncedTailOfTheOldSegmentIsSyncedBeforeTheNewOneExists) {
  FakeFileSystem fs;
  LogOptions options = FakeOptions(&fs);
  options.segment_bytes = 100;
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  fs.ClearTrace();
  (*opened.log)->Append(kType, std::string(100, 'u'), /*sync=*/false, nullptr);
  ASSERT_TRUE((*opened.log)->AppendSync(kType, "next").ok());  // after the rotation
  EXPECT_THAT(fs.Trace(), ::testing::IsSupersetOf({"sync " + SegmentPath(1)}));
  const std::vector<std::string> trace = fs.Trace();
  EXPECT_LT(std::find(trace.begin(), trace.end(), "sync " + SegmentPath(1)),
            std::find(trace.begin(), trace.end(), "create " + SegmentPath(2) + ".tmp"));
  fs.Crash();
  opened.log->reset();
  testing::Opened reopened = OpenLog(options);
  ASSERT_TRUE(reopened.log.ok()) << reopened.log.status();
  EXPECT_THAT(reopened.replayed, ElementsAre(std::string(100, 'u'), "next"));
}

TEST(WalRotationTest, SegmentsACrashLeftBehindAreDeletedOnOpenAndNotReplayed) {
  FakeFileSystem fs;
  Model model;
  LogOptions options = ModelOptions(&fs, &model, 256);
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok());
  fs.InjectFault(FsOp::kRemove, 1, absl::InternalError("unlink: I/O error"), /*sticky=*/true);
  int i = 0;
  while ((*opened.log)->health().ok() && i < 1000) (void)Step(**opened.log, model, i++);
  ASSERT_FALSE((*opened.log)->health().ok());
  fs.Crash();
  opened.log->reset();
  fs.ClearFaults();
  EXPECT_TRUE(fs.Exists(SegmentPath(1)));
  {
    // Damage inside segment 2's checkpoint: Open refuses and deletes nothing.
    FakeFileSystem damaged;
    for (const std::string& name : DirEntries(&fs)) {
      const std::string path = absl::StrCat(kDir, "/", name);
      damaged.SetContents(path, fs.Contents(path));
    }
    std::string second = fs.Contents(SegmentPath(2));
    second[kSegmentHeaderBytes + kRecordHeaderBytes] ^= 1;
    damaged.SetContents(SegmentPath(2), second);
    EXPECT_EQ(Log::Open(FakeOptions(&damaged), nullptr).status().code(),
              absl::StatusCode::kDataLoss);
    EXPECT_TRUE(damaged.Exists(SegmentPath(1)));
  }
  Model rebuilt;
  testing::Opened reopened = OpenLog(ModelOptions(&fs, &rebuilt, 256));
  ASSERT_TRUE(reopened.log.ok()) << reopened.log.status();
  EXPECT_FALSE(fs.Exists(SegmentPath(1)));
  EXPECT_THAT(reopened.replayed, ElementsAreArray(model.last_checkpoint));
}

TEST(WalRotationTest, CorruptOrShortEarlierSegmentRefusesOpen) {
  FakeFileSystem original;
  LogOptions options = FakeOptions(&original);
  options.segment_bytes = 200;
  {
    testing::Opened opened = OpenLog(options);
    ASSERT_TRUE(opened.log.ok());
    for (int i = 0; i < 40; ++i)
      ASSERT_TRUE((*opened.log)->AppendSync(kType, testing::Payload(i)).ok());
  }
  const std::string first = original.Contents(SegmentPath(1));
  {
    FakeFileSystem fs;
    for (const std::string& name : DirEntries(&original)) {
      fs.SetContents(absl::StrCat(kDir, "/", name),
                     original.Contents(absl::StrCat(kDir, "/", name)));
    }
    std::string bad = first;
    bad[bad.size() - 1] ^= 1;  // inside the last record of segment 1
    fs.SetContents(SegmentPath(1), bad);
    auto log = Log::Open(FakeOptions(&fs), nullptr);
    EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(log.status().message(), HasSubstr("corrupt record in " + SegmentPath(1)));

    fs.SetContents(SegmentPath(1), first.substr(0, first.size() - 1));
    log = Log::Open(FakeOptions(&fs), nullptr);
    EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(log.status().message(), HasSubstr("only the last segment may end in a torn write"));

    fs.SetContents(SegmentPath(1), first);
    ASSERT_TRUE(fs.Remove(SegmentPath(2)).ok());
    log = Log::Open(FakeOptions(&fs), nullptr);
    EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(log.status().message(), HasSubstr("0000000000000002.wal is missing"));
  }
}

}  // namespace
}  // namespace txcoord::wal
