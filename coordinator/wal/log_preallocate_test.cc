// Zeros written ahead of the appends (LogOptions.preallocate_bytes): a
// batch's fdatasync then overwrites blocks the file already has, so it need
// not make a new file size durable too. What must hold: appends overwrite
// the zeros rather than go after them, a crash takes back what was not
// synced, Open cuts the zeros quietly, and only the last segment has any.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_reader.h"
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
using ::testing::Not;
using testing::OpenLog;
using testing::Payload;
using testing::Payloads;
using testing::SegmentPath;

constexpr uint64_t kAhead = 4096;

LogOptions Preallocating(FakeFileSystem* fs) {
  LogOptions options = FakeOptions(fs);
  options.preallocate_bytes = kAhead;
  return options;
}

uint64_t FileSize(FakeFileSystem* fs, uint64_t sequence) {
  auto size = fs->FileSize(SegmentPath(sequence));
  return size.ok() ? *size : 0;
}

std::vector<std::string> ZeroFills(FakeFileSystem* fs) {
  std::vector<std::string> fills;
  for (const std::string& op : fs->Trace()) {
    if (op.rfind("zeros ", 0) == 0) fills.push_back(op);
  }
  return fills;
}

TEST(WalPreallocateTest, SyncedAppendsOverwriteTheZerosAndLeaveTheFileSizeAlone) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(Preallocating(&fs));
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  Log& log = **opened.log;
  const uint64_t size = FileSize(&fs, 1);
  EXPECT_EQ(size, kSegmentHeaderBytes + kAhead);
  uint64_t end = kSegmentHeaderBytes;
  for (int i = 0; end + kRecordHeaderBytes + Payload(i).size() < size - kAhead / 2; ++i) {
    ASSERT_TRUE(log.AppendSync(kType, Payload(i)).ok());
    end += kRecordHeaderBytes + Payload(i).size();
    EXPECT_EQ(FileSize(&fs, 1), size) << i;
  }
  const std::string data = fs.Contents(SegmentPath(1));
  SegmentScan scan = ScanSegment(data, nullptr);
  EXPECT_EQ(scan.state, SegmentScan::State::kZeroTail);
  EXPECT_EQ(scan.good_bytes, end);
  EXPECT_EQ(log.stats().preallocations, 1u);
}

TEST(WalPreallocateTest, ZerosAreToppedUpOnceLessThanHalfIsLeft) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(Preallocating(&fs));
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  Log& log = **opened.log;
  const std::string payload(100, 'p');
  uint64_t end = kSegmentHeaderBytes;
  const uint64_t first_fill = kSegmentHeaderBytes + kAhead;
  // The batch that leaves less than half ahead is followed by a top-up to
  // kAhead past its end, before the writer takes the next batch.
  while (end + kAhead / 2 <= first_fill) {
    ASSERT_TRUE(log.AppendSync(kType, payload).ok());
    end += kRecordHeaderBytes + payload.size();
  }
  ASSERT_TRUE(log.AppendSync(kType, payload).ok());
  EXPECT_THAT(ZeroFills(&fs),
              ElementsAre(absl::StrCat("zeros ", SegmentPath(1), " ", first_fill),
                          absl::StrCat("zeros ", SegmentPath(1), " ", end + kAhead)));
  EXPECT_EQ(FileSize(&fs, 1), end + kAhead);
  EXPECT_EQ(log.stats().preallocations, 2u);
}

TEST(WalPreallocateTest, ReopenReplaysEverythingCutsTheZerosQuietlyAndWritesThemAgain) {
  FakeFileSystem fs;
  {
    testing::Opened opened = OpenLog(Preallocating(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*opened.log)->AppendSync(kType, Payload(i)).ok());
  }
  const uint64_t end = ScanSegment(fs.Contents(SegmentPath(1)), nullptr).good_bytes;
  ASSERT_GT(FileSize(&fs, 1), end);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("reopening ", round));
    fs.ClearTrace();
    ::testing::internal::CaptureStderr();
    testing::Opened opened = OpenLog(Preallocating(&fs));
    const std::string logged = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    std::vector<std::string> expected = Payloads(20);
    if (round == 1) expected.push_back("after");
    EXPECT_THAT(opened.replayed, ElementsAreArray(expected));
    EXPECT_THAT(logged, Not(HasSubstr("WARN")));
    EXPECT_THAT(logged, HasSubstr("zero bytes after it cut"));
    std::vector<std::string> names;
    ASSERT_TRUE(fs.ListDir(kDir, &names).ok());
    EXPECT_THAT(names, ElementsAre(SegmentFileName(1)));  // no .broken copy
    const uint64_t now_end = ScanSegment(fs.Contents(SegmentPath(1)), nullptr).good_bytes;
    EXPECT_EQ(FileSize(&fs, 1), now_end + kAhead);
    if (round == 0) {
      ASSERT_TRUE((*opened.log)->AppendSync(kType, "after").ok());
    }
  }
}

TEST(WalPreallocateTest, ACrashTakesBackUnsyncedRecordsAndKeepsEveryAcknowledgedOne) {
  FakeFileSystem fs;
  {
    testing::Opened opened = OpenLog(Preallocating(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    ASSERT_TRUE((*opened.log)->AppendSync(kType, "durable").ok());
    absl::Notification written;
    (*opened.log)->Append(kType, "never synced", /*sync=*/false, [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      written.Notify();
    });
    written.WaitForNotification();
    EXPECT_GT(fs.UnsyncedBytes(SegmentPath(1)), 0u);
    fs.Crash();  // before the log's clean stop could sync it
  }
  testing::Opened opened = OpenLog(Preallocating(&fs));
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  EXPECT_THAT(opened.replayed, ElementsAre("durable"));
}

TEST(WalPreallocateTest, ATornWriteIntoTheZerosIsCutAndItsCopyLeavesThemOut) {
  FakeFileSystem fs;
  {
    testing::Opened opened = OpenLog(Preallocating(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    ASSERT_TRUE((*opened.log)->AppendSync(kType, "whole").ok());
  }
  std::string data = fs.Contents(SegmentPath(1));
  const uint64_t end = ScanSegment(data, nullptr).good_bytes;
  std::string torn;
  AppendRecord(kType, "torn record", &torn);
  torn.resize(torn.size() - 3);  // its last bytes never reached the disk
  data.replace(end, torn.size(), torn);
  fs.SetContents(SegmentPath(1), data);
  ::testing::internal::CaptureStderr();
  testing::Opened opened = OpenLog(Preallocating(&fs));
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  EXPECT_THAT(opened.replayed, ElementsAre("whole"));
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("torn tail of ", SegmentPath(1), " at offset ", end)));
  // The copy holds the torn record as far as its header claims (its last
  // three bytes are zeros), not the kilobytes of zeros after it.
  std::string copy = torn + std::string(3, '\0');
  EXPECT_EQ(fs.Contents(absl::StrCat(SegmentPath(1), ".", end, kBrokenSuffix)), copy);
  EXPECT_EQ(FileSize(&fs, 1), end + kAhead);
}

// Zeros stop at segment_bytes, where a segment rotates: every segment but
// the last ends in its last record, as Open requires of them.
TEST(WalPreallocateTest, OnlyTheLastSegmentEndsInZeros) {
  FakeFileSystem fs;
  LogOptions options = Preallocating(&fs);
  options.segment_bytes = 500;  // zeros ahead stop at it
  {
    testing::Opened opened = OpenLog(options);  // no checkpoint: segments are kept
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    EXPECT_EQ(FileSize(&fs, 1), options.segment_bytes);
    for (int i = 0; i < 60; ++i) ASSERT_TRUE((*opened.log)->AppendSync(kType, Payload(i)).ok());
    ASSERT_GE((*opened.log)->stats().rotations, 2u);
  }
  std::vector<SegmentReport> report;
  ASSERT_TRUE(CheckLog(kDir, &fs, &report).ok());
  ASSERT_GE(report.size(), 3u);
  for (size_t i = 0; i < report.size(); ++i) {
    SCOPED_TRACE(report[i].file);
    const bool last = i + 1 == report.size();
    EXPECT_EQ(report[i].bytes, report[i].good_bytes + report[i].zero_tail_bytes);
    EXPECT_EQ(report[i].zero_tail_bytes > 0, last);
  }
  testing::Opened opened = OpenLog(options);
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(60)));
}

// A power loss while unsynced records were being written back: any subset
// of their sectors may have landed, over the zeros written ahead or, with
// none, past the end of the file. Open must still open, and keep every
// record whose sync was acknowledged, in order. Returns how many seeds left
// a hole with records landed after it.
int CheckSectorsLandingInAnyOrder(uint64_t preallocate_bytes, uint32_t seeds) {
  int torn_with_a_hole = 0;
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    FakeFileSystem fs;
    std::vector<std::string> appended, acknowledged;
    // With zeros, enough for the whole run: no top-up, whose sync would
    // race with the crash, so that each seed lands the same way every time.
    LogOptions options = FakeOptions(&fs);
    options.preallocate_bytes = preallocate_bytes;
    {
      testing::Opened opened = OpenLog(options);
      EXPECT_TRUE(opened.log.ok()) << opened.log.status();
      if (!opened.log.ok()) return torn_with_a_hole;
      const int records = 6 + static_cast<int>(seed % 9);
      for (int i = 0; i < records; ++i) {
        // Every fourth synced; the rest written and left for a later sync.
        const std::string payload = absl::StrCat("r", i, std::string(150 + 37 * (seed % 5), 'x'));
        appended.push_back(payload);
        if (i % 4 == 0) {
          EXPECT_TRUE((*opened.log)->AppendSync(kType, payload).ok());
          acknowledged = appended;
        } else {
          absl::Notification written;
          (*opened.log)->Append(kType, payload, /*sync=*/false, [&](absl::Status s) {
            written.Notify();
          });
          written.WaitForNotification();
        }
      }
      fs.CrashLandingSectorsAtRandom(seed);
    }
    ::testing::internal::CaptureStderr();
    testing::Opened opened = OpenLog(options);
    const std::string logged = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(opened.log.ok()) << opened.log.status();
    if (!opened.log.ok()) continue;
    EXPECT_GE(opened.replayed.size(), acknowledged.size());
    // A prefix of what was appended, holding everything acknowledged.
    const size_t kept = std::min(opened.replayed.size(), appended.size());
    EXPECT_THAT(opened.replayed, ElementsAreArray(appended.begin(), appended.begin() + kept));
    if (logged.find("lost sector") != std::string::npos) ++torn_with_a_hole;
  }
  return torn_with_a_hole;
}

TEST(WalPreallocateTest, SectorsOfUnsyncedWritesLandingInAnyOrderNeitherLoseNorBlockOpen) {
  constexpr uint32_t kSeeds = 300;
  // The sweep did make holes with records landed after them (26 of 300
  // seeds when written).
  const int holes = CheckSectorsLandingInAnyOrder(/*preallocate_bytes=*/64 << 10, kSeeds);
  EXPECT_GT(holes, static_cast<int>(kSeeds / 20)) << holes << " of " << kSeeds;
}

// The same for appends that grow the file (no zeros ahead): its new size
// may land with a later sector while an earlier one does not.
TEST(WalPreallocateTest, SectorsOfUnsyncedAppendsLandingInAnyOrderNeitherLoseNorBlockOpen) {
  constexpr uint32_t kSeeds = 300;
  // 26 of 300 seeds when written: the same sectors land as above, but
  // here the file's size lands with them.
  const int holes = CheckSectorsLandingInAnyOrder(/*preallocate_bytes=*/0, kSeeds);
  EXPECT_GT(holes, static_cast<int>(kSeeds / 20)) << holes << " of " << kSeeds;
}

TEST(WalPreallocateTest, AFullDiskSkipsTheZerosAndTheLogGoesOn) {
  FakeFileSystem fs;
  uint64_t end = kSegmentHeaderBytes;
  {
    testing::Opened opened = OpenLog(Preallocating(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    Log& log = **opened.log;
    const std::string payload(100, 'p');
    const uint64_t record = kRecordHeaderBytes + payload.size();
    // Up to the record that will leave less than half ahead and ask for a
    // top-up; then a disk with no room for more zeros, but the records go
    // over those already there.
    while (end + record + kAhead / 2 <= kSegmentHeaderBytes + kAhead) {
      ASSERT_TRUE(log.AppendSync(kType, payload).ok());
      end += record;
    }
    fs.SetFreeBytes(100);
    ::testing::internal::CaptureStderr();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log.AppendSync(kType, payload).ok());
    const std::string logged = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(logged, HasSubstr("No space left on device"));
    EXPECT_THAT(logged, HasSubstr("appends go on without zeros ahead"));
    EXPECT_TRUE(log.health().ok());
    EXPECT_EQ(log.stats().preallocation_failures, 1u);  // not tried again at once
  }
  // Open on the full disk: the zeros it cannot write are skipped too, and
  // the few it could write take the next record.
  fs.SetFreeBytes(64);
  testing::Opened opened = OpenLog(Preallocating(&fs));
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  EXPECT_EQ((*opened.log)->stats().preallocation_failures, 1u);
  EXPECT_EQ(opened.replayed.size(), (end - kSegmentHeaderBytes) / (kRecordHeaderBytes + 100) + 3);
  EXPECT_TRUE((*opened.log)->AppendSync(kType, "after").ok());
}

TEST(WalPreallocateTest, OffWritesNoZeros) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  ASSERT_TRUE((*opened.log)->AppendSync(kType, "r").ok());
  EXPECT_THAT(ZeroFills(&fs), ElementsAre());
  EXPECT_EQ(FileSize(&fs, 1), kSegmentHeaderBytes + kRecordHeaderBytes + 1);
  EXPECT_EQ((*opened.log)->stats().preallocations, 0u);
}

}  // namespace
}  // namespace txcoord::wal
