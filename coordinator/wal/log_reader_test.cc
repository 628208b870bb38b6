#include "coordinator/wal/log_reader.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::HasSubstr;
using testing::kDir;
using testing::SegmentPath;

// A segment image: header then one record per payload.
std::string Segment(uint64_t sequence, const std::vector<std::string>& payloads,
                    uint16_t flags = kFlagBase, uint64_t checkpoint_bytes = 0) {
  SegmentHeader header;
  header.flags = flags;
  header.sequence = sequence;
  header.checkpoint_bytes = checkpoint_bytes;
  std::string bytes;
  AppendSegmentHeader(header, &bytes);
  for (const std::string& p : payloads) AppendRecord(5, p, &bytes);
  return bytes;
}

std::vector<std::string> Scan(const std::string& data, SegmentScan* scan) {
  std::vector<std::string> seen;
  *scan = ScanSegment(data, [&](const RecordView& r) { seen.emplace_back(r.payload); });
  return seen;
}

TEST(WalReaderTest, CleanSegmentVisitsEveryRecordInOrderWithItsOffset) {
  const std::string data = Segment(1, {"a", "bb", "ccc"});
  std::vector<uint64_t> offsets;
  const SegmentScan scan =
      ScanSegment(data, [&](const RecordView& r) { offsets.push_back(r.offset); });
  EXPECT_EQ(scan.state, SegmentScan::State::kClean);
  EXPECT_EQ(scan.records, 3u);
  EXPECT_EQ(scan.good_bytes, data.size());
  EXPECT_THAT(offsets, ::testing::ElementsAre(28, 28 + 10, 28 + 10 + 11));
}

TEST(WalReaderTest, TruncatedTrailingRecordIsTornNotCorrupt) {
  const std::string whole = Segment(1, {"first", "second-record"});
  const size_t last = kSegmentHeaderBytes + kRecordHeaderBytes + 5;
  for (size_t cut = last + 1; cut < whole.size(); ++cut) {
    SegmentScan scan;
    EXPECT_THAT(Scan(whole.substr(0, cut), &scan), ::testing::ElementsAre("first")) << cut;
    EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << cut;
    EXPECT_EQ(scan.good_bytes, last) << cut;
    EXPECT_TRUE(SegmentVerdict("f", scan, /*is_last=*/true).ok());
    EXPECT_EQ(SegmentVerdict("f", scan, /*is_last=*/false).code(), absl::StatusCode::kDataLoss);
  }
}

// Zeros after the last record: space written ahead of the appends. Fine at
// the end of the log; none are written past where a segment rotates, so
// anywhere else they are not.
TEST(WalReaderTest, TrailingZerosAreAZeroTailThatOnlyTheLastSegmentMayHave) {
  SegmentScan scan;
  const std::string records = Segment(1, {"a"});
  Scan(records + std::string(4096, '\0'), &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kZeroTail);
  EXPECT_EQ(scan.records, 1u);
  EXPECT_EQ(scan.good_bytes, records.size());
  EXPECT_THAT(scan.problem, HasSubstr("trailing zeros (4096 bytes)"));
  EXPECT_TRUE(SegmentVerdict("f", scan, /*is_last=*/true).ok());
  absl::Status older = SegmentVerdict("f", scan, /*is_last=*/false);
  EXPECT_EQ(older.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(older.message(), HasSubstr("only the last segment may end in zeros"));
}

// Writes over zeros written ahead land in no order: a crash can keep a
// later sector and lose an earlier one. The zeros of a lost sector before a
// valid record are then a torn write (nothing after the hole was synced),
// when they reach a sector boundary and lie within the last MiB written.
TEST(WalReaderTest, ALostSectorBeforeAValidRecordIsTorn) {
  const std::string synced = Segment(1, {"acknowledged"});
  std::string unsynced;
  AppendRecord(5, std::string(1200, 'u'), &unsynced);  // spans sectors 1 and 2
  AppendRecord(5, "after the hole", &unsynced);
  const std::string written = synced + unsynced;
  std::string landed = written + std::string(2048, '\0');
  std::fill(landed.begin() + 512, landed.begin() + 1024, '\0');  // sector 1 lost
  SegmentScan scan;
  EXPECT_THAT(Scan(landed, &scan), ::testing::ElementsAre("acknowledged"));
  EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << scan.problem;
  EXPECT_EQ(scan.good_bytes, synced.size());
  EXPECT_THAT(scan.problem,
              HasSubstr("zeros of a lost sector at offset 512 before a record at offset"));
  EXPECT_TRUE(SegmentVerdict("f", scan, /*is_last=*/true).ok());
  EXPECT_EQ(SegmentVerdict("f", scan, /*is_last=*/false).code(), absl::StatusCode::kDataLoss);

  // The sector the last sync ended in, lost: zeros from the first unsynced
  // byte to its end.
  std::string partial = written + std::string(2048, '\0');
  std::fill(partial.begin() + static_cast<std::ptrdiff_t>(synced.size()), partial.begin() + 512,
            '\0');
  Scan(partial, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << scan.problem;
  EXPECT_EQ(scan.good_bytes, synced.size());
  EXPECT_THAT(scan.problem, HasSubstr(absl::StrCat("lost sector at offset ", synced.size())));

  // The same in a file that ends in its last record (an append that grew
  // the file landed, an overwrite of zeros before it did not).
  std::string appended = written;
  std::fill(appended.begin() + 512, appended.begin() + 1024, '\0');
  Scan(appended, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << scan.problem;

  // Over a MiB before the last byte written: no crash leaves that much
  // unsynced, so it is damage to synced records.
  std::string far = written;
  AppendRecord(5, std::string(kMaxPayloadBytes, 'f'), &far);
  far += std::string(2048, '\0');
  std::fill(far.begin() + 512, far.begin() + 1024, '\0');
  Scan(far, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt) << scan.problem;

  // Zeros short of a whole aligned sector: damage, not a lost sector.
  std::string damaged = written + std::string(2048, '\0');
  std::fill(damaged.begin() + 600, damaged.begin() + 1100, '\0');
  Scan(damaged, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
}

// The last sync ended 1 to 3 bytes before a sector boundary and that
// sector was lost: only the first bytes of the next record's masked CRC
// read as zeros. The rest of the record proves them its CRC's first bytes.
TEST(WalReaderTest, ALostSectorOfOneToThreeBytesIsTornWhenTheRestOfTheRecordProvesIt) {
  for (size_t lost = 1; lost <= 3; ++lost) {
    SCOPED_TRACE(absl::StrCat(lost, " bytes lost"));
    // A first record whose end falls `lost` bytes before offset 512.
    const size_t first_payload = 512 - lost - kSegmentHeaderBytes - kRecordHeaderBytes;
    const std::string synced = Segment(1, {std::string(first_payload, 's')});
    ASSERT_EQ(synced.size(), 512 - lost);
    std::string unsynced;
    AppendRecord(5, std::string(700, 'u'), &unsynced);
    AppendRecord(5, "after the hole", &unsynced);
    std::string landed = synced + unsynced + std::string(1024, '\0');
    std::fill(landed.begin() + static_cast<std::ptrdiff_t>(synced.size()), landed.begin() + 512,
              '\0');
    SegmentScan scan;
    Scan(landed, &scan);
    EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << scan.problem;
    EXPECT_EQ(scan.good_bytes, synced.size());
    // The same zeros where the rest of the record does not agree (its
    // payload damaged too): corruption.
    landed[600] ^= 1;
    Scan(landed, &scan);
    EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt) << scan.problem;
  }
}

TEST(WalReaderTest, ZerosWhereTheCheckpointShouldBeAreCorruption) {
  const std::string whole = Segment(1, {"a", "b"});
  // A checkpoint of both records, the second of which is zeros.
  std::string data = Segment(1, {"a", "b"}, kFlagBase, whole.size() - kSegmentHeaderBytes);
  const size_t second = kSegmentHeaderBytes + kRecordHeaderBytes + 1;
  std::fill(data.begin() + static_cast<std::ptrdiff_t>(second), data.end(), '\0');
  SegmentScan scan;
  Scan(data, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  EXPECT_EQ(SegmentVerdict("f", scan, /*is_last=*/true).code(), absl::StatusCode::kDataLoss);
}

TEST(WalReaderTest, BadRecordFollowedByAValidRecordIsCorruption) {
  std::string data = Segment(1, {"one", "two", "three"});
  const size_t second = kSegmentHeaderBytes + kRecordHeaderBytes + 3;
  data[second + kRecordHeaderBytes] ^= 1;  // a payload byte of "two"
  SegmentScan scan;
  EXPECT_THAT(Scan(data, &scan), ::testing::ElementsAre("one"));
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  absl::Status s = SegmentVerdict("/d/0000000000000001.wal", scan, /*is_last=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("corrupt record in /d/0000000000000001.wal at offset ", second,
                                     ": checksum mismatch")));
}

// Payloads carry client strings, so a torn record may hold a whole valid
// frame; that is its own payload, not a record after it.
TEST(WalReaderTest, TornRecordWithAFrameInItsPayloadIsTornWhetherCutOrZeroFilled) {
  std::string planted;
  AppendRecord(5, "planted", &planted);
  std::string whole = Segment(1, {"first"});
  const size_t torn_start = whole.size();
  AppendRecord(5, "endpoint=" + planted + std::string(40, 'x'), &whole);
  for (size_t cut = torn_start + 1; cut < whole.size(); ++cut) {
    const std::string zero_filled =
        whole.substr(0, cut) + std::string(whole.size() - cut + 512, '\0');
    for (const std::string& data : {whole.substr(0, cut), zero_filled}) {
      SegmentScan scan;
      EXPECT_THAT(Scan(data, &scan), ::testing::ElementsAre("first")) << cut;
      EXPECT_EQ(scan.state, SegmentScan::State::kTorn) << cut << ": " << scan.problem;
      EXPECT_EQ(scan.good_bytes, torn_start) << cut;
    }
  }
}

TEST(WalReaderTest, ValidRecordPastABadRecordsClaimedExtentIsCorruption) {
  std::string planted;
  AppendRecord(5, "planted", &planted);
  std::string data = Segment(1, {"one", "endpoint=" + planted + "tail", "three"});
  const size_t second = kSegmentHeaderBytes + kRecordHeaderBytes + 3;
  data[second + kRecordHeaderBytes + 1] ^= 1;  // "endpoint", before the frame
  SegmentScan scan;
  EXPECT_THAT(Scan(data, &scan), ::testing::ElementsAre("one"));
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  EXPECT_EQ(scan.problem_offset, second);
  const size_t third = second + kRecordHeaderBytes + 9 + planted.size() + 4;
  EXPECT_THAT(scan.problem, HasSubstr(absl::StrCat("a valid record follows at offset ", third)));
}

// Whatever one byte of a length field becomes (shorter, longer but inside
// the file, past its end, over the limit), the records after it prove
// corruption: past a shorter extent they are found directly; inside a longer
// one, or past the end of the file, the record's checksum (which covers the
// true length) says where the record really ends.
TEST(WalReaderTest, FlippedLengthFieldIsCorruptionWhenGoodRecordsFollow) {
  const std::string whole = Segment(1, {"one", "two", "three", "four"});
  const size_t second = kSegmentHeaderBytes + kRecordHeaderBytes + 3;
  for (size_t at = second + 4; at < second + 8; ++at) {
    for (int mask = 1; mask < 256; ++mask) {
      std::string data = whole;
      data[at] = static_cast<char>(data[at] ^ mask);
      SegmentScan scan;
      EXPECT_THAT(Scan(data, &scan), ::testing::ElementsAre("one")) << at << " ^ " << mask;
      EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt) << at << " ^ " << mask;
      EXPECT_EQ(scan.problem_offset, second) << at << " ^ " << mask;
    }
  }
  std::string past_the_end = whole;
  past_the_end[second + 5] = 1;  // length 3 + 256: beyond the last record
  SegmentScan scan;
  Scan(past_the_end, &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  EXPECT_THAT(scan.problem, HasSubstr(absl::StrCat("short payload (", whole.size() - second - 9)));
  EXPECT_THAT(
      scan.problem,
      HasSubstr(absl::StrCat("a valid record follows at offset ", second + kRecordHeaderBytes + 3,
                             ", where the checksum says this record ends: its length "
                             "field reads 259 but the checksum matches 3")));
}

TEST(WalReaderTest, BadRecordInsideTheCheckpointIsCorruptionEvenAtTheEnd) {
  const std::string whole =
      Segment(2, {"open-1", "open-2"}, kFlagBase, 2 * kRecordHeaderBytes + 12);
  SegmentScan scan;
  Scan(whole.substr(0, whole.size() - 1), &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  Scan(whole.substr(0, kSegmentHeaderBytes + kRecordHeaderBytes + 6), &scan);
  EXPECT_EQ(scan.state, SegmentScan::State::kCorrupt);
  EXPECT_THAT(scan.problem, HasSubstr("checkpoint"));
}

TEST(WalReaderTest, BadSegmentHeaderIsCorruptionAtOffsetZero) {
  std::string data = Segment(1, {"a"});
  data[10] ^= 1;
  SegmentScan scan;
  EXPECT_TRUE(Scan(data, &scan).empty());
  absl::Status s = SegmentVerdict("/d/x.wal", scan, /*is_last=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("corrupt segment header in /d/x.wal at offset 0"));
}

TEST(WalReaderTest, PlanStartsAtTheNewestBaseAndNeverReadsOlderSegments) {
  FakeFileSystem fs;
  fs.SetContents(SegmentPath(1), "garbage that is not even a header");
  fs.SetContents(SegmentPath(2), Segment(2, {"x"}, /*flags=*/0));
  fs.SetContents(SegmentPath(3), Segment(3, {"ckpt"}, kFlagBase, kRecordHeaderBytes + 4));
  fs.SetContents(SegmentPath(4), Segment(4, {"y"}, /*flags=*/0));
  fs.SetContents(SegmentPath(5) + ".tmp", "half a rotation");
  fs.SetContents(std::string(kDir) + "/notes.txt", "ignored");
  LogPlan plan;
  ASSERT_TRUE(PlanLog(kDir, &fs, &plan).ok());
  ASSERT_EQ(plan.live.size(), 2u);
  EXPECT_EQ(plan.live[0].sequence, 3u);
  EXPECT_EQ(plan.live[1].sequence, 4u);
  ASSERT_EQ(plan.obsolete.size(), 2u);
  EXPECT_EQ(plan.obsolete[0].name, "0000000000000001.wal");
  EXPECT_THAT(plan.tmp_files, ::testing::ElementsAre(SegmentPath(5) + ".tmp"));
}

TEST(WalReaderTest, MissingLiveSegmentIsDataLoss) {
  FakeFileSystem fs;
  fs.SetContents(SegmentPath(1), Segment(1, {"a"}));
  fs.SetContents(SegmentPath(3), Segment(3, {"c"}, /*flags=*/0));
  LogPlan plan;
  absl::Status s = PlanLog(kDir, &fs, &plan);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("segment 0000000000000002.wal is missing"));

  FakeFileSystem no_base;
  no_base.SetContents(SegmentPath(2), Segment(2, {"b"}, /*flags=*/0));
  s = PlanLog(kDir, &no_base, &plan);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("continues an older segment that is missing"));
}

TEST(WalReaderTest, SegmentWhoseHeaderNamesAnotherSequenceIsDataLoss) {
  FakeFileSystem fs;
  fs.SetContents(SegmentPath(2), Segment(7, {"a"}));
  LogPlan plan;
  absl::Status s = PlanLog(kDir, &fs, &plan);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("names sequence 7"));
}

TEST(WalReaderTest, CheckLogReportsATornTailAndChangesNothing) {
  FakeFileSystem fs;
  fs.SetContents(SegmentPath(1), Segment(1, {"a", "b"}));
  const std::string last = Segment(2, {"c", "d"}, /*flags=*/0);
  fs.SetContents(SegmentPath(2), last.substr(0, last.size() - 1));
  fs.ClearTrace();
  std::vector<SegmentReport> report;
  std::vector<std::string> dumped;
  absl::Status s = CheckLog(kDir, &fs, &report, [&](const RecordInfo& r) {
    dumped.push_back(absl::StrCat(r.file, "@", r.offset, ":", r.payload));
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(fs.Trace().empty());
  EXPECT_EQ(fs.Contents(SegmentPath(2)), last.substr(0, last.size() - 1));
  EXPECT_THAT(dumped,
              ::testing::ElementsAre("0000000000000001.wal@28:a", "0000000000000001.wal@38:b",
                                     "0000000000000002.wal@28:c"));
  ASSERT_EQ(report.size(), 2u);
  EXPECT_FALSE(report[0].torn_tail);
  EXPECT_TRUE(report[0].base);
  EXPECT_EQ(report[0].records, 2u);
  EXPECT_TRUE(report[1].torn_tail);
  EXPECT_EQ(report[1].good_bytes, 38u);
  EXPECT_THAT(report[1].tail_problem, HasSubstr("short payload"));
}

TEST(WalReaderTest, CheckLogFailsWithTheErrorOpenWouldGive) {
  FakeFileSystem fs;
  std::string first = Segment(1, {"a", "b"});
  first.back() ^= 1;  // the last record of a segment that is not the last
  fs.SetContents(SegmentPath(1), first);
  fs.SetContents(SegmentPath(2), Segment(2, {"c"}, /*flags=*/0));
  std::vector<SegmentReport> report;
  absl::Status checked = CheckLog(kDir, &fs, &report);
  EXPECT_EQ(checked.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(checked.message(),
              HasSubstr("corrupt record in /data/wal/0000000000000001.wal at offset 38"));
  ASSERT_EQ(report.size(), 2u);
  EXPECT_FALSE(report[0].status.ok());
  EXPECT_TRUE(report[1].status.ok());

  auto opened = Log::Open(testing::FakeOptions(&fs), nullptr);
  EXPECT_EQ(opened.status(), checked);
}

}  // namespace
}  // namespace txcoord::wal
