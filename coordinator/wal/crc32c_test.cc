#include "coordinator/wal/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace txcoord::crc32c {
namespace {

TEST(Crc32cTest, MatchesPublishedCheckValue) {
  // The "check" value of CRC-32C in every CRC catalogue.
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
}

TEST(Crc32cTest, MatchesRfc3720TestVectors) {
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Value(""), 0u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Value(ascending), 0x46dd794eu);
  EXPECT_EQ(Value(descending), 0x113fdb5cu);
  const unsigned char iscsi_read[48] = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
                                        0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Extend(0, iscsi_read, sizeof(iscsi_read)), 0xd9963a56u);
}

TEST(Crc32cTest, ExtendingEqualsHashingTheConcatenation) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  // Every split point, so the 8-byte fast path and the byte tail both meet
  // unaligned starts and short inputs.
  for (size_t split = 0; split <= data.size(); split += 13) {
    const uint32_t first = Extend(0, data.data(), split);
    EXPECT_EQ(Extend(first, data.data() + split, data.size() - split), Value(data)) << split;
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xffffffffu}) {
    EXPECT_NE(Mask(crc), crc);
    EXPECT_NE(Mask(Mask(crc)), crc);
    EXPECT_EQ(Unmask(Mask(crc)), crc);
  }
}

}  // namespace
}  // namespace txcoord::crc32c
