// `--help` and `--helpfull` of the real daemons list their flags without the
// source path they were built from (common/flag_usage.h).
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// stdout and stderr of `binary --help` (or `--helpfull`, with every flag
// the binary links).
std::string HelpOutput(const std::string& binary, const std::string& flag) {
  std::string output;
  FILE* pipe = popen(("'" + binary + "' " + flag + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  pclose(pipe);
  return output;
}

void ExpectNoSourcePath(const std::string& help, const std::string& known_flag) {
  EXPECT_THAT(help, HasSubstr("--" + known_flag));
  EXPECT_THAT(help, Not(HasSubstr(TXCOORD_SOURCE_DIR)));
  EXPECT_THAT(help, HasSubstr("Flags from "));
  // Every group is named by a file's basename.
  for (size_t at = help.find("Flags from "); at != std::string::npos;
       at = help.find("Flags from ", at + 1)) {
    const std::string group = help.substr(at, help.find('\n', at) - at);
    EXPECT_THAT(group, Not(HasSubstr("/"))) << group;
  }
}

TEST(HelpTest, CoordinatorHelpListsFlagsWithoutSourcePaths) {
  absl::StatusOr<std::string> binary = CoordinatorBinary();
  ASSERT_TRUE(binary.ok()) << binary.status();
  const std::string help = HelpOutput(*binary, "--help");
  ExpectNoSourcePath(help, "data_dir");
  // --help names every flag the daemon takes, also those defined beside
  // its main file: the registry's, TLS, failover on etcd.
  for (const char* flag : {"--registry ", "--tls_cert ", "--log ", "--etcd_compaction_interval "}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  const std::string full = HelpOutput(*binary, "--helpfull");
  ExpectNoSourcePath(full, "tls_cert");
  EXPECT_THAT(full, HasSubstr("Flags from daemon_flags.cc:"));
}

TEST(HelpTest, AgentHelpListsFlagsWithoutSourcePaths) {
  absl::StatusOr<std::string> binary = AgentBinary();
  ASSERT_TRUE(binary.ok()) << binary.status();
  ExpectNoSourcePath(HelpOutput(*binary, "--help"), "coordinator");
  ExpectNoSourcePath(HelpOutput(*binary, "--helpfull"), "tls_cert");
}

}  // namespace
}  // namespace txcoord::testing
