#include "common/utf8.h"

#include <cstdint>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace txcoord {
namespace {

// Unicode's definition, decoded the slow way: a sequence is well-formed if
// its bit pattern decodes to a scalar value (not a surrogate, at most
// U+10FFFF) in the shortest form.
std::optional<size_t> ReferenceFindInvalid(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t length;
    uint32_t cp;
    if (lead < 0x80) {
      length = 1, cp = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07;
    } else {
      return i;
    }
    if (s.size() - i < length) return i;
    for (size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < shortest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += length;
  }
  return std::nullopt;
}

TEST(Utf8Test, AcceptsEmptyAsciiAndNul) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("SELECT * FROM t WHERE v = ?1"));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

TEST(Utf8Test, AcceptsTheFirstAndLastCodePointOfEveryLength) {
  for (const char* ok : {"\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
                         "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
                         "gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80"}) {
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  }
}

TEST(Utf8Test, RejectsOverlongForms) {
  for (const char* overlong : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF",
                               "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF"}) {
    EXPECT_EQ(FindInvalidUtf8(overlong), 0u) << overlong;
  }
}

TEST(Utf8Test, RejectsSurrogates) {
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\x80"), 0u);  // U+D800
  EXPECT_EQ(FindInvalidUtf8("\xED\xBF\xBF"), 0u);  // U+DFFF
  // A CESU-8 pair (U+1F600 as two surrogates).
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\xBD\xED\xB8\x80"), 0u);
}

TEST(Utf8Test, RejectsCodePointsAboveU10FFFF) {
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF7\xBF\xBF\xBF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xF8\x88\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
}

TEST(Utf8Test, RejectsStrayContinuationAndCutSequences) {
  EXPECT_EQ(FindInvalidUtf8("\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("ab\xBF"), 2u);
  EXPECT_EQ(FindInvalidUtf8("ab\xE2\x82"), 2u);  // cut at the end
  EXPECT_EQ(FindInvalidUtf8("ab\xE2\x82"
                            "cd"),
            2u);  // cut by ASCII
  EXPECT_EQ(FindInvalidUtf8("\xF0\x9F\x98"), 0u);
}

TEST(Utf8Test, ReportsTheOffsetOfTheFirstBadSequence) {
  EXPECT_EQ(FindInvalidUtf8("SELECT '\xC3\xBC' || '\xff\xfe'"), 16u);
  // After the eight-byte ASCII fast path and across every alignment.
  for (size_t at = 0; at < 40; ++at) {
    std::string s(48, 'x');
    s[at] = '\xFF';
    EXPECT_EQ(FindInvalidUtf8(s), at);
    std::string good(48, 'x');
    good.replace(at, 3, "\xE2\x82\xAC");
    EXPECT_TRUE(IsValidUtf8(good.substr(0, 48))) << at;
  }
}

TEST(Utf8Test, AgreesWithTheDefinitionOnEveryInputOfUpToThreeBytes) {
  std::string s;
  for (int length = 1; length <= 3; ++length) {
    const uint32_t count = 1u << (8 * length);
    for (uint32_t v = 0; v < count; ++v) {
      s.resize(length);
      for (int k = 0; k < length; ++k) s[k] = static_cast<char>(v >> (8 * k));
      ASSERT_EQ(FindInvalidUtf8(s), ReferenceFindInvalid(s)) << length << " bytes, value " << v;
    }
  }
}

TEST(Utf8Test, AgreesWithTheDefinitionOnFourByteLeads) {
  const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xFF};
  std::string s(4, '\0');
  for (int lead = 0xE0; lead <= 0xFF; ++lead) {
    for (int second = 0; second <= 0xFF; ++second) {
      for (unsigned char third : tails) {
        for (unsigned char fourth : tails) {
          s[0] = static_cast<char>(lead), s[1] = static_cast<char>(second);
          s[2] = static_cast<char>(third), s[3] = static_cast<char>(fourth);
          ASSERT_EQ(FindInvalidUtf8(s), ReferenceFindInvalid(s)) << lead << " " << second;
        }
      }
    }
  }
}

TEST(Utf8Test, CheckNamesTheFieldAndTheByte) {
  EXPECT_TRUE(CheckUtf8("reason", "fine").ok());
  absl::Status status = CheckUtf8("statements[2].sql", "SELECT '\xC0\xAF'");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "statements[2].sql is not valid UTF-8 (byte 8)");
}

}  // namespace
}  // namespace txcoord
