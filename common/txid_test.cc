#include "common/txid.h"

#include "gtest/gtest.h"

namespace txcoord {
namespace {

TEST(TxidTest, RoundTripsThroughText) {
  Txid id{"east-1", 3, 42};
  EXPECT_EQ(id.ToString(), "east-1.3.42");
  auto parsed = ParseTxid("east-1.3.42");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->cluster, "east-1");
  EXPECT_EQ(parsed->epoch, 3u);
  EXPECT_EQ(parsed->sequence, 42u);
}

TEST(TxidTest, MalformedIdsAreRejectedWithAMessage) {
  for (const char* bad : {"", "c1", "c1.2", "c1.x.3", "c1.2.3.4", "c 1.2.3", ".2.3", "c1.-2.3"}) {
    auto parsed = ParseTxid(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(parsed.status().message().empty()) << bad;
  }
  EXPECT_EQ(ParseTxid(std::string(200, 'a')).status().code(), absl::StatusCode::kInvalidArgument);
}

// One txid, one text: another spelling of the same numbers would name the
// same transaction under a different key.
TEST(TxidTest, OnlyTheCanonicalSpellingOfTheNumbersIsAccepted) {
  for (const char* other : {"c1.7.01", "c1.07.1", "c1.+7.1", "c1.7.+1", "c1. 7.1", "c1.7.1 ",
                            "c1.7.18446744073709551616", "c1.0x7.1"}) {
    EXPECT_EQ(ParseTxid(other).status().code(), absl::StatusCode::kInvalidArgument) << other;
  }
  for (const char* canonical : {"c1.0.0", "c1.7.1", "c1.18446744073709551615.10"}) {
    absl::StatusOr<Txid> parsed = ParseTxid(canonical);
    ASSERT_TRUE(parsed.ok()) << canonical << ": " << parsed.status();
    EXPECT_EQ(parsed->ToString(), canonical);
  }
}

TEST(TxidTest, NamesAllowOnlySafeCharacters) {
  EXPECT_TRUE(IsValidName("agent-1.svc:50051"));
  EXPECT_FALSE(IsValidName("agent-1.svc", /*allow_dot=*/false));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(std::string(129, 'a')));
}

}  // namespace
}  // namespace txcoord
