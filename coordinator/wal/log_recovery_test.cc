// Open's recovery: torn tails are cut at the last good record, corruption
// anywhere else refuses to open with the file and offset.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_format.h"
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
using testing::WriteRecords;

constexpr int kRecords = 5;

std::vector<std::string> BrokenFiles(FakeFileSystem* fs) {
  std::vector<std::string> names, broken;
  EXPECT_TRUE(fs->ListDir(kDir, &names).ok());
  for (const std::string& n : names) {
    if (absl::EndsWith(n, ".broken")) broken.push_back(n);
  }
  return broken;
}

TEST(WalRecoveryTest, TornTailAtEveryByteOffsetIsCutCleanly) {
  FakeFileSystem original;
  const std::vector<uint64_t> offsets = WriteRecords(&original, kRecords);
  ASSERT_EQ(offsets.size(), static_cast<size_t>(kRecords));
  const std::string whole = original.Contents(SegmentPath(1));
  const uint64_t last = offsets.back();
  for (uint64_t cut = last + 1; cut < whole.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    FakeFileSystem fs;
    fs.SetContents(SegmentPath(1), whole.substr(0, cut));
    testing::Opened opened = OpenLog(FakeOptions(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(kRecords - 1)));
    EXPECT_EQ(fs.Contents(SegmentPath(1)), whole.substr(0, last));
    EXPECT_EQ(fs.UnsyncedBytes(SegmentPath(1)), 0u);
    EXPECT_EQ(fs.Contents(absl::StrCat(SegmentPath(1), ".", last, ".broken")),
              whole.substr(last, cut - last));
    // The log goes on right after the last good record.
    ASSERT_TRUE((*opened.log)->AppendSync(kType, "after").ok());
    opened.log->reset();
    testing::Opened again = OpenLog(FakeOptions(&fs));
    ASSERT_TRUE(again.log.ok()) << again.log.status();
    std::vector<std::string> expected = Payloads(kRecords - 1);
    expected.push_back("after");
    EXPECT_THAT(again.replayed, ElementsAreArray(expected));
  }
}

TEST(WalRecoveryTest, CleanEndNeedsNoRepair) {
  FakeFileSystem fs;
  WriteRecords(&fs, kRecords);
  const std::string whole = fs.Contents(SegmentPath(1));
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(kRecords)));
  EXPECT_EQ(fs.Contents(SegmentPath(1)), whole);
  EXPECT_TRUE(BrokenFiles(&fs).empty());
}

TEST(WalRecoveryTest, CorruptByteAnywhereInTheFinalRecordIsCutAsATornTail) {
  FakeFileSystem original;
  const std::vector<uint64_t> offsets = WriteRecords(&original, kRecords);
  const std::string whole = original.Contents(SegmentPath(1));
  for (uint64_t at = offsets.back(); at < whole.size(); ++at) {
    SCOPED_TRACE(absl::StrCat("byte ", at));
    std::string bad = whole;
    bad[at] ^= 0x40;
    FakeFileSystem fs;
    fs.SetContents(SegmentPath(1), bad);
    testing::Opened opened = OpenLog(FakeOptions(&fs));
    ASSERT_TRUE(opened.log.ok()) << opened.log.status();
    EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(kRecords - 1)));
    EXPECT_EQ(fs.Contents(SegmentPath(1)), whole.substr(0, offsets.back()));
  }
}

// Zeros are what preallocation leaves ahead of the appends: cut so that
// appends go on after the last record, with no copy and no warning.
TEST(WalRecoveryTest, TrailingZerosAfterTheLastRecordAreCutQuietly) {
  FakeFileSystem fs;
  WriteRecords(&fs, kRecords);
  const std::string whole = fs.Contents(SegmentPath(1));
  fs.SetContents(SegmentPath(1), whole + std::string(4096, '\0'));
  ::testing::internal::CaptureStderr();
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.log.ok()) << opened.log.status();
  EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(kRecords)));
  EXPECT_EQ(fs.Contents(SegmentPath(1)), whole);
  EXPECT_THAT(logged, Not(HasSubstr("WARN")));
  std::vector<std::string> names;
  ASSERT_TRUE(fs.ListDir(kDir, &names).ok());
  EXPECT_THAT(names, ElementsAre(SegmentFileName(1)));
}

TEST(WalRecoveryTest, CutIsLoggedAtWarningWithFileAndOffset) {
  FakeFileSystem fs;
  const std::vector<uint64_t> offsets = WriteRecords(&fs, kRecords);
  const std::string whole = fs.Contents(SegmentPath(1));
  fs.SetContents(SegmentPath(1), whole.substr(0, whole.size() - 2));
  ::testing::internal::CaptureStderr();
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.log.ok());
  EXPECT_THAT(logged, HasSubstr("WARN"));
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("torn tail of ", SegmentPath(1), " at offset ",
                                             offsets.back())));
}

TEST(WalRecoveryTest, FlippedByteMidLogRefusesOpenWithDataLossNamingFileAndOffset) {
  FakeFileSystem original;
  const std::vector<uint64_t> offsets = WriteRecords(&original, kRecords);
  const std::string whole = original.Contents(SegmentPath(1));
  // Every byte of every record but the last: each is followed by good ones.
  for (int record = 0; record + 1 < kRecords; ++record) {
    for (uint64_t at = offsets[record]; at < offsets[record + 1]; ++at) {
      SCOPED_TRACE(absl::StrCat("record ", record, " byte ", at));
      std::string bad = whole;
      bad[at] ^= 0x01;
      FakeFileSystem fs;
      fs.SetContents(SegmentPath(1), bad);
      testing::Opened opened = OpenLog(FakeOptions(&fs));
      ASSERT_EQ(opened.log.status().code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(opened.log.status().message(),
                  HasSubstr(absl::StrCat("corrupt record in ", SegmentPath(1), " at offset ",
                                         offsets[record], ": ")));
      EXPECT_EQ(fs.Contents(SegmentPath(1)), bad) << "a refused open must not repair";
    }
  }
}

TEST(WalRecoveryTest, CorruptSegmentHeaderRefusesOpen) {
  FakeFileSystem fs;
  WriteRecords(&fs, kRecords);
  std::string bad = fs.Contents(SegmentPath(1));
  bad[9] ^= 0x01;
  fs.SetContents(SegmentPath(1), bad);
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  EXPECT_EQ(opened.log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.log.status().message(),
              HasSubstr(absl::StrCat("corrupt segment header in ", SegmentPath(1))));
}

TEST(WalRecoveryTest, UnfinishedTmpSegmentIsRemovedOnOpen) {
  FakeFileSystem fs;
  WriteRecords(&fs, kRecords);
  fs.SetContents(SegmentPath(2) + ".tmp", "a rotation that never finished");
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  EXPECT_THAT(opened.replayed, ElementsAreArray(Payloads(kRecords)));
  EXPECT_FALSE(fs.Exists(SegmentPath(2) + ".tmp"));
}

TEST(WalRecoveryTest, EmptyDirectoryGetsAFirstSegmentMadeDurableUnderATmpName) {
  FakeFileSystem fs;
  testing::Opened opened = OpenLog(FakeOptions(&fs));
  ASSERT_TRUE(opened.log.ok());
  EXPECT_TRUE(opened.replayed.empty());
  const std::string tmp = SegmentPath(1) + ".tmp";
  EXPECT_THAT(fs.Trace(), ::testing::IsSupersetOf({"create " + tmp, "sync " + tmp,
                                                   "rename " + tmp + " " + SegmentPath(1),
                                                   std::string("syncdir ") + kDir}));
  fs.Crash();
  EXPECT_EQ(fs.Contents(SegmentPath(1)).size(), kSegmentHeaderBytes);
}

}  // namespace
}  // namespace txcoord::wal
