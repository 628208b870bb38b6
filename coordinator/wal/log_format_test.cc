#include "coordinator/wal/log_format.h"

#include <string>

#include "coordinator/wal/crc32c.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

uint32_t LoadLE32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

TEST(WalFormatTest, SegmentFileNamesAreSixteenHexDigitsThatSortBySequence) {
  EXPECT_EQ(SegmentFileName(1), "0000000000000001.wal");
  EXPECT_EQ(SegmentFileName(255), "00000000000000ff.wal");
  EXPECT_LT(SegmentFileName(9), SegmentFileName(10));
  EXPECT_LT(SegmentFileName(0xff), SegmentFileName(0x100));
  uint64_t sequence = 0;
  ASSERT_TRUE(ParseSegmentFileName("00000000000000ff.wal", &sequence));
  EXPECT_EQ(sequence, 255u);
  ASSERT_TRUE(ParseSegmentFileName(SegmentFileName(~0ull), &sequence));
  EXPECT_EQ(sequence, ~0ull);
}

TEST(WalFormatTest, OnlyExactSegmentNamesParse) {
  uint64_t sequence;
  for (const char* name :
       {"1.wal", "0000000000000000.wal", "00000000000000FF.wal", "000000000000000g.wal",
        "0000000000000001.wal.tmp", "0000000000000001.wal.28.broken", "0000000000000001.log",
        "00000000000000001.wal", ""}) {
    EXPECT_FALSE(ParseSegmentFileName(name, &sequence)) << name;
  }
}

TEST(WalFormatTest, SegmentHeaderRoundTrips) {
  SegmentHeader header;
  header.flags = kFlagBase;
  header.sequence = 0x0102030405060708ull;
  header.checkpoint_bytes = 4242;
  std::string bytes;
  AppendSegmentHeader(header, &bytes);
  ASSERT_EQ(bytes.size(), kSegmentHeaderBytes);
  EXPECT_EQ(bytes.substr(0, 4), "TWAL");
  SegmentHeader parsed;
  ASSERT_TRUE(ParseSegmentHeader(bytes, &parsed).ok());
  EXPECT_EQ(parsed.version, kFormatVersion);
  EXPECT_EQ(parsed.flags, kFlagBase);
  EXPECT_EQ(parsed.sequence, header.sequence);
  EXPECT_EQ(parsed.checkpoint_bytes, 4242u);
}

TEST(WalFormatTest, EverySegmentHeaderByteIsCheckedAsDataLoss) {
  SegmentHeader header;
  header.sequence = 3;
  std::string bytes;
  AppendSegmentHeader(header, &bytes);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x20;
    SegmentHeader parsed;
    EXPECT_EQ(ParseSegmentHeader(bad, &parsed).code(), absl::StatusCode::kDataLoss) << i;
  }
  SegmentHeader parsed;
  EXPECT_EQ(ParseSegmentHeader(bytes.substr(0, 27), &parsed).code(), absl::StatusCode::kDataLoss);
}

TEST(WalFormatTest, NewerFormatVersionIsRefusedAsFailedPrecondition) {
  SegmentHeader header;
  header.version = kFormatVersion + 1;
  header.sequence = 1;
  std::string bytes;
  AppendSegmentHeader(header, &bytes);
  SegmentHeader parsed;
  absl::Status s = ParseSegmentHeader(bytes, &parsed);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("version 2"), absl::string_view::npos) << s;
}

TEST(WalFormatTest, RecordIsMaskedCrcThenLengthThenTypeThenPayload) {
  std::string frame;
  AppendRecord(7, "abc", &frame);
  ASSERT_EQ(frame.size(), kRecordHeaderBytes + 3);
  EXPECT_EQ(LoadLE32(frame, 4), 3u);
  EXPECT_EQ(frame[8], 7);
  EXPECT_EQ(frame.substr(9), "abc");
  // The checksum covers length, type and payload: a bad length is caught by
  // the CRC even when it still points inside the file.
  EXPECT_EQ(crc32c::Unmask(LoadLE32(frame, 0)), crc32c::Value(frame.substr(4)));
}

TEST(WalFormatTest, RecordsAppendBackToBack) {
  std::string frames;
  AppendRecord(1, "", &frames);
  AppendRecord(2, "xy", &frames);
  ASSERT_EQ(frames.size(), 2 * kRecordHeaderBytes + 2);
  EXPECT_EQ(LoadLE32(frames, 4), 0u);
  EXPECT_EQ(LoadLE32(frames, kRecordHeaderBytes + 4), 2u);
  EXPECT_EQ(frames[kRecordHeaderBytes + 8], 2);
}

}  // namespace
}  // namespace txcoord::wal
