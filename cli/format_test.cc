#include "cli/format.h"

#include "gtest/gtest.h"

namespace txcoord::cli {
namespace {

TEST(FormatTest, AgesReadAtAGlance) {
  EXPECT_EQ(FormatAge(absl::Milliseconds(850)), "850ms");
  EXPECT_EQ(FormatAge(absl::Milliseconds(12345)), "12.3s");
  EXPECT_EQ(FormatAge(absl::Seconds(303)), "5m03s");
  EXPECT_EQ(FormatAge(absl::Minutes(130)), "2h10m");
  EXPECT_EQ(FormatAge(absl::Hours(76)), "3d04h");
}

TEST(FormatTest, TableAlignsColumns) {
  Table table({"A", "LONGER"});
  table.AddRow({"xyz", "1"});
  EXPECT_EQ(table.Render(), "A    LONGER\nxyz  1\n");
}

TEST(FormatTest, EnumNamesLoseTheirPrefixes) {
  EXPECT_EQ(StateName(v1::TX_STATE_COMMITTING), "COMMITTING");
  EXPECT_EQ(VoteName(v1::VOTE_YES), "YES");
  EXPECT_EQ(VoteName(v1::VOTE_UNSPECIFIED), "-");
  EXPECT_EQ(OutcomeName(v1::OUTCOME_ABORTED), "ABORTED");
}

TEST(FormatTest, TruncateFlattensAndCuts) {
  EXPECT_EQ(Truncate("a\nb", 10), "a b");
  EXPECT_EQ(Truncate("abcdefghij", 6), "abc...");
}

}  // namespace
}  // namespace txcoord::cli
