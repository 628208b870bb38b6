#include "cli/command_line.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cli {
namespace {

using ::testing::ElementsAre;

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "txctl");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(CommandLineTest, WordsAndFlagsMayComeInAnyOrder) {
  absl::StatusOr<CommandLine> line =
      Parse({"--json", "resolve", "c1.1.1", "--commit", "--agent", "h:1", "--reason=x y"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_THAT(line->words, ElementsAre("resolve", "c1.1.1"));
  EXPECT_TRUE(line->Has("json"));
  EXPECT_TRUE(line->Has("commit"));
  EXPECT_EQ(line->Get("agent", ""), "h:1");
  EXPECT_EQ(line->Get("reason", ""), "x y");
}

TEST(CommandLineTest, UnderscoresAndShortHelpAreAccepted) {
  absl::StatusOr<CommandLine> line = Parse({"list", "--min_age=5m", "-h"});
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->Get("min-age", ""), "5m");
  EXPECT_TRUE(line->Has("help"));
}

TEST(CommandLineTest, MalformedFlagsAreUsageErrors) {
  EXPECT_FALSE(Parse({"show", "--agent"}).ok());          // value missing
  EXPECT_FALSE(Parse({"resolve", "--commit=yes"}).ok());  // a switch with a value
  EXPECT_FALSE(Parse({"list", "--json", "--json"}).ok());
  EXPECT_FALSE(Parse({"list", "-x"}).ok());
}

TEST(CommandLineTest, DoubleDashEndsFlags) {
  absl::StatusOr<CommandLine> line = Parse({"show", "--", "--odd"});
  ASSERT_TRUE(line.ok());
  EXPECT_THAT(line->words, ElementsAre("show", "--odd"));
}

}  // namespace
}  // namespace txcoord::cli
