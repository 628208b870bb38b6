// The real daemons read --config=FILE (common/config_file.h): they serve
// from a file's settings, the command line wins over the file, and a bad
// file stops them before they start with its name and line.
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/daemon_process.h"
#include "harness/temp_dir.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

class DaemonConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("daemon-config");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    absl::StatusOr<std::string> coordinator = CoordinatorBinary();
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_binary_ = *coordinator;
    absl::StatusOr<std::string> agent = AgentBinary();
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_binary_ = *agent;
  }

  // Writes `text` to DIR/name and returns its path.
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_->Path(name);
    std::ofstream(path) << text;
    return path;
  }

  absl::StatusOr<std::unique_ptr<DaemonProcess>> Start(const std::string& binary,
                                                       std::vector<std::string> args,
                                                       const std::string& log) {
    return DaemonProcess::Start({binary, std::move(args), dir_->Path(log)});
  }

  // A coordinator configured by file only.
  std::string CoordinatorConfig(const std::string& name) {
    return WriteFile(name,
                     "# coordinator for the test\n"
                     "listen = 127.0.0.1:0\n"
                     "data-dir = " +
                         dir_->Path(name + ".data") +
                         "\n"
                         "cluster_id = fromfile   # overridden by some tests\n"
                         "tx-timeout = 20s\n");
  }

  std::unique_ptr<TempDir> dir_;
  std::string coordinator_binary_;
  std::string agent_binary_;
};

TEST_F(DaemonConfigTest, CoordinatorServesWithSettingsFromItsFile) {
  absl::StatusOr<std::unique_ptr<DaemonProcess>> coordinator =
      Start(coordinator_binary_, {"--config=" + CoordinatorConfig("c.conf")}, "c.log");
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->Terminate().ok());
  EXPECT_THAT((*coordinator)->LogTail(), HasSubstr("cluster=fromfile"));
}

TEST_F(DaemonConfigTest, CommandLineOverridesTheFile) {
  absl::StatusOr<std::unique_ptr<DaemonProcess>> coordinator =
      Start(coordinator_binary_, {"--cluster-id=fromargs", "--config", CoordinatorConfig("c.conf")},
            "c.log");
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->Terminate().ok());
  EXPECT_THAT((*coordinator)->LogTail(), HasSubstr("cluster=fromargs"));
}

TEST_F(DaemonConfigTest, AgentServesWithSettingsFromItsFile) {
  absl::StatusOr<std::unique_ptr<DaemonProcess>> coordinator =
      Start(coordinator_binary_, {"--config=" + CoordinatorConfig("c.conf")}, "c.log");
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const std::string config = WriteFile("txagent-orders.conf",
                                       "name = orders\n"
                                       "db = " +
                                           dir_->Path("orders.db") +
                                           "\n"
                                           "listen = 127.0.0.1:0\n"
                                           "coordinator = " +
                                           (*coordinator)->address() +
                                           "\n"
                                           "lock_timeout = 2s\n");
  absl::StatusOr<std::unique_ptr<DaemonProcess>> agent =
      Start(agent_binary_, {"--config=" + config}, "a.log");
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE((*agent)->Terminate().ok());
  EXPECT_THAT((*agent)->LogTail(), HasSubstr("txagent orders serving on"));
  EXPECT_THAT((*agent)->LogTail(), HasSubstr("db=" + dir_->Path("orders.db")));
}

// Each daemon refuses a broken file, naming the file and the line, and
// exits non-zero without serving.
TEST_F(DaemonConfigTest, BrokenFileStopsEachDaemonNamingFileAndLine) {
  const std::string unknown = WriteFile("unknown.conf", "# ok\nlisten = 127.0.0.1:0\nlisen = x\n");
  const std::string bad_value =
      WriteFile("bad.conf", "listen = 127.0.0.1:0\nlock_timeout = soon\n");
  for (const std::string& binary : {coordinator_binary_, agent_binary_}) {
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
        Start(binary,
              {"--config=" + unknown, "--data-dir=" + dir_->Path("d"), "--name=n",
               "--db=" + dir_->Path("n.db")},
              "broken.log");
    ASSERT_FALSE(daemon.ok()) << binary;
    EXPECT_THAT(daemon.status().message(), HasSubstr("exit 2")) << binary;
    EXPECT_THAT(daemon.status().message(), HasSubstr(unknown + ":3: unknown name 'lisen'"));
  }
  absl::StatusOr<std::unique_ptr<DaemonProcess>> agent =
      Start(agent_binary_, {"--config=" + bad_value}, "bad.log");
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(agent.status().message(), HasSubstr(bad_value + ":2: bad value for 'lock_timeout'"));
}

TEST_F(DaemonConfigTest, AnUnknownVoteDeferralStopsTheAgent) {
  absl::StatusOr<std::unique_ptr<DaemonProcess>> agent =
      Start(agent_binary_,
            {"--name=n", "--db=" + dir_->Path("n.db"), "--listen=127.0.0.1:0",
             "--vote_deferral=sometimes"},
            "deferral.log");
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(agent.status().message(), HasSubstr("exit 2"));
  EXPECT_THAT(agent.status().message(),
              HasSubstr("--vote_deferral must be contended, always or never"));
}

TEST_F(DaemonConfigTest, UnreadableFileStopsTheDaemon) {
  const std::string missing = dir_->Path("missing.conf");
  absl::StatusOr<std::unique_ptr<DaemonProcess>> coordinator =
      Start(coordinator_binary_, {"--config=" + missing}, "missing.log");
  ASSERT_FALSE(coordinator.ok());
  EXPECT_THAT(coordinator.status().message(), HasSubstr("exit 2"));
  EXPECT_THAT(coordinator.status().message(),
              HasSubstr("cannot read configuration file " + missing));
}

}  // namespace
}  // namespace txcoord::testing
