#include "common/config_file.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_listen, "default", "for the test");
ABSL_FLAG(absl::Duration, test_timeout, absl::Seconds(1), "for the test");
ABSL_FLAG(bool, test_verbose, false, "for the test");
ABSL_FLAG(std::string, test_empty, "set", "for the test");

namespace txcoord {
namespace {

using ::testing::HasSubstr;

void ResetFlags() {
  absl::SetFlag(&FLAGS_test_listen, "default");
  absl::SetFlag(&FLAGS_test_timeout, absl::Seconds(1));
  absl::SetFlag(&FLAGS_test_verbose, false);
  absl::SetFlag(&FLAGS_test_empty, "set");
}

// argv over a vector of strings, as main receives it.
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    for (std::string& arg : args_) pointers_.push_back(arg.data());
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

TEST(ConfigFileTest, SetsFlagsNamedWithDashesOrUnderscores) {
  ResetFlags();
  ASSERT_TRUE(ApplyConfig("a.conf",
                          "test-listen = 0.0.0.0:7070\n"
                          "test_timeout=30s\n"
                          "test_verbose = true\n")
                  .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "0.0.0.0:7070");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_timeout), absl::Seconds(30));
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
}

TEST(ConfigFileTest, SkipsCommentsAndBlankLinesAndTrimsValues) {
  ResetFlags();
  ASSERT_TRUE(ApplyConfig("a.conf",
                          "# the listening address\n"
                          "\n"
                          "   \t\n"
                          "test_listen =  host:1   # trailing comment\n"
                          "test_empty =\n")
                  .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "host:1");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_empty), "");
}

TEST(ConfigFileTest, HashInsideAValueIsKept) {
  ResetFlags();
  ASSERT_TRUE(ApplyConfig("a.conf", "test_listen = a#b\n").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "a#b");
}

TEST(ConfigFileTest, UnknownNameNamesFileAndLine) {
  absl::Status status = ApplyConfig("/etc/x.conf", "# comment\ntest_listen = a\nno_such = 1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/etc/x.conf:3: unknown name 'no_such'"));
}

TEST(ConfigFileTest, BadValueNamesFileLineAndFlag) {
  absl::Status status = ApplyConfig("x.conf", "test_timeout = soon\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("x.conf:1: bad value for 'test_timeout'"));
}

TEST(ConfigFileTest, LineWithoutEqualsIsAnError) {
  absl::Status status = ApplyConfig("x.conf", "\ntest_listen\n");
  EXPECT_THAT(status.message(), HasSubstr("x.conf:2: expected \"name = value\""));
}

TEST(ConfigFileTest, NameGivenTwiceIsAnError) {
  absl::Status status = ApplyConfig("x.conf", "test_listen = a\ntest-listen = b\n");
  EXPECT_THAT(status.message(), HasSubstr("x.conf:2: 'test_listen' is already set on line 1"));
}

TEST(ConfigFileTest, ConfigCannotNameAnotherFile) {
  absl::Status status = ApplyConfig("x.conf", "config = other.conf\n");
  EXPECT_THAT(status.message(), HasSubstr("x.conf:1: 'config' cannot be set"));
}

TEST(ConfigFileTest, MissingFileIsNotFoundNamingIt) {
  absl::Status status = ApplyConfigFile("/nonexistent/txcoord.conf");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/txcoord.conf"));
}

TEST(ConfigFileTest, DirectoryIsUnreadable) {
  absl::Status status = ApplyConfigFile("/");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot read configuration file /"));
}

TEST(ConfigFileTest, ReadsAFile) {
  ResetFlags();
  char path[] = "/tmp/config_file_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "test_listen = from-file\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  Argv args({"prog", "--config", path});
  EXPECT_TRUE(ApplyConfigFileFromArgs(args.argc(), args.argv()).ok());
  unlink(path);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "from-file");
}

TEST(ConfigFileTest, PathFromArgsTakesBothFormsAndTheLast) {
  Argv both({"prog", "--config=a.conf", "--x=1", "--config", "b.conf"});
  EXPECT_EQ(*ConfigPathFromArgs(both.argc(), both.argv()), "b.conf");
  Argv none({"prog", "--x=1", "--", "--config=c.conf"});
  EXPECT_EQ(*ConfigPathFromArgs(none.argc(), none.argv()), "");
  Argv dangling({"prog", "--config"});
  EXPECT_FALSE(ConfigPathFromArgs(dangling.argc(), dangling.argv()).ok());
  Argv empty({"prog", "--config="});
  EXPECT_FALSE(ConfigPathFromArgs(empty.argc(), empty.argv()).ok());
}

}  // namespace
}  // namespace txcoord
