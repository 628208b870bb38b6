// Tests of the process harness itself, against /bin/sh stand-ins for the
// daemons, so that it is trusted before the real daemons are run under it.
#include "harness/daemon_process.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/temp_dir.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

// A stand-in daemon: prints its listening line, exits 0 on SIGTERM. The
// `sleep infinity` child is only something to wait on; the trap ends it
// (and it exists before the line, so no SIGTERM can come before it).
constexpr char kWellBehaved[] =
    "sleep infinity & child=$!; trap 'kill $child; exit 0' TERM; echo 'to the log' >&2; "
    "echo 'fake listening on 127.0.0.1:4242'; wait";

DaemonOptions Shell(const TempDir& dir, const std::string& script) {
  DaemonOptions options;
  options.binary = "/bin/sh";
  options.args = {"-c", script};
  options.log_path = dir.Path("daemon.log");
  options.start_timeout = absl::Seconds(10);
  return options;
}

TEST(DaemonProcessTest, StartReturnsTheAddressOfTheListeningLine) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start(Shell(*dir, kWellBehaved));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_EQ((*daemon)->address(), "127.0.0.1:4242");
  EXPECT_EQ((*daemon)->port(), 4242);
  EXPECT_TRUE((*daemon)->Running());
}

TEST(DaemonProcessTest, StderrIsAppendedToTheLogAfterAHeader) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  for (int run = 0; run < 2; ++run) {
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
        DaemonProcess::Start(Shell(*dir, kWellBehaved));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    ASSERT_TRUE((*daemon)->Terminate().ok());
  }
  std::ifstream log(dir->Path("daemon.log"));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("==== harness "));
  EXPECT_THAT(text, HasSubstr("/bin/sh -c"));
  // Both runs are kept.
  EXPECT_NE(text.find("to the log"), text.rfind("to the log"));
}

TEST(DaemonProcessTest, TerminateReportsACleanExit) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start(Shell(*dir, kWellBehaved));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  absl::StatusOr<ExitStatus> exit = (*daemon)->Terminate(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->Clean()) << exit->ToString();
  EXPECT_FALSE((*daemon)->Running());
  // Asking again reports the same status.
  exit = (*daemon)->Terminate();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->Clean());
}

TEST(DaemonProcessTest, Kill9ReportsSigkill) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start(Shell(*dir, "echo 'x listening on 127.0.0.1:1'; exec sleep infinity"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE((*daemon)->Kill9().ok());
  absl::StatusOr<ExitStatus> exit = (*daemon)->Wait(absl::ZeroDuration());
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_THAT(exit->ToString(), HasSubstr("signal 9"));
}

TEST(DaemonProcessTest, TerminateKillsAChildThatIgnoresSigterm) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  // An ignored signal stays ignored across exec.
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(
      Shell(*dir, "trap '' TERM; echo 'x listening on 127.0.0.1:1'; exec sleep infinity"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  absl::StatusOr<ExitStatus> exit = (*daemon)->Terminate(absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(exit.status())) << exit.status();
  EXPECT_FALSE((*daemon)->Running());
}

TEST(DaemonProcessTest, ExitBeforeListeningIsAnErrorQuotingTheLog) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start(Shell(*dir, "echo 'bad flag --frob' >&2; exit 3"));
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("exit 3"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("bad flag --frob"));
}

TEST(DaemonProcessTest, SilenceBeyondTheStartTimeoutIsAnError) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  DaemonOptions options = Shell(*dir, "echo 'starting...'; exec sleep infinity");
  options.start_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  EXPECT_TRUE(absl::IsDeadlineExceeded(daemon.status())) << daemon.status();
  EXPECT_THAT(daemon.status().message(), HasSubstr("starting..."));
}

TEST(DaemonProcessTest, MissingBinaryIsAnError) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  DaemonOptions options = Shell(*dir, "");
  options.binary = dir->Path("no-such-binary");
  options.args.clear();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("execv failed"));
}

TEST(DaemonProcessTest, ReadyLogTextIsLookedForOnlyInWhatThisRunLogged) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  DaemonOptions options = Shell(*dir,
                                "echo 'warming up' >&2; echo 'Server is ready' >&2; "
                                "exec sleep infinity");
  options.ready_log_text = "Server is ready";
  absl::StatusOr<std::unique_ptr<DaemonProcess>> first = DaemonProcess::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE((*first)->Running());
  ASSERT_TRUE((*first)->Kill9().ok());
  // The same log already says "ready", from the first run; a second run that
  // never says it must not count as ready.
  options.args = {"-c", "exit 3"};
  absl::StatusOr<std::unique_ptr<DaemonProcess>> second = DaemonProcess::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("exit 3"));
}

TEST(DaemonProcessTest, DestructorKillsTheChild) {
  absl::StatusOr<TempDir> dir = TempDir::Create("harness");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(
      Shell(*dir, "trap '' TERM; echo 'x listening on 127.0.0.1:1'; exec sleep infinity"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const pid_t pid = (*daemon)->pid();
  daemon->reset();
  // Reaped, so the pid is gone (barring reuse within microseconds).
  EXPECT_NE(kill(pid, 0), 0);
}

TEST(TempDirTest, RemovesItsTreeUnlessKept) {
  std::string removed, kept;
  {
    absl::StatusOr<TempDir> dir = TempDir::Create("t");
    ASSERT_TRUE(dir.ok()) << dir.status();
    removed = dir->path();
    std::filesystem::create_directories(dir->Path("a/b"));
    std::ofstream(dir->Path("a/b/file")) << "x";
  }
  {
    absl::StatusOr<TempDir> dir = TempDir::Create("t");
    ASSERT_TRUE(dir.ok()) << dir.status();
    kept = dir->path();
    dir->Keep();
  }
  EXPECT_FALSE(std::filesystem::exists(removed));
  EXPECT_TRUE(std::filesystem::exists(kept));
  std::filesystem::remove_all(kept);
}

TEST(BinariesTest, EnvironmentOverridesTheBuildTree) {
  ASSERT_EQ(setenv("TXCOORD_BIN", "/bin/sh", 1), 0);
  absl::StatusOr<std::string> binary = CoordinatorBinary();
  EXPECT_TRUE(binary.ok() && *binary == "/bin/sh") << binary.status();
  ASSERT_EQ(setenv("TXCOORD_BIN", "/nonexistent/txcoord", 1), 0);
  EXPECT_TRUE(absl::IsNotFound(CoordinatorBinary().status()));
  unsetenv("TXCOORD_BIN");
}

TEST(BinariesTest, BuildDirHoldsCMakeCache) {
  absl::StatusOr<std::string> dir = BuildDir();
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE(std::filesystem::exists(*dir + "/CMakeCache.txt"));
}

// A stand-in for both daemons: logs its arguments, listens "on" the port of
// --listen (a made-up one for :0) and exits 0 on SIGTERM.
constexpr char kFakeDaemon[] = R"(#!/bin/sh
for arg; do case "$arg" in --listen=*) listen="${arg#--listen=}";; esac; done
port="${listen##*:}"
[ "$port" = 0 ] && port=$((20000 + $$ % 20000))
echo "args: $*" >&2
sleep infinity & child=$!
trap 'kill $child; exit 0' TERM
echo "fake listening on 127.0.0.1:$port"
wait
)";

TEST(ClusterTest, RestartsKeepPortsAndPaths) {
  absl::StatusOr<TempDir> bin = TempDir::Create("fakebin");
  ASSERT_TRUE(bin.ok()) << bin.status();
  const std::string fake = bin->Path("fake-daemon");
  std::ofstream(fake) << kFakeDaemon;
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);

  ClusterOptions options;
  options.agents = 2;
  options.coordinator_binary = fake;
  options.agent_binary = fake;
  options.cluster_id = "c9";
  options.agent_flags = {"--lock_timeout=1s"};
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  Cluster& c = **cluster;
  ASSERT_EQ(c.agent_count(), 2);
  const std::string coordinator = c.coordinator_address();
  const std::string agent1 = c.agent_address(1);
  EXPECT_EQ(c.agent_name(1), "agent1");
  EXPECT_EQ(c.agent_db(1), c.dir() + "/agent1.db");

  ASSERT_TRUE(c.KillAgent(1).ok());
  EXPECT_EQ(c.agent(1), nullptr);
  EXPECT_TRUE(c.CheckRunning().ok());
  ASSERT_TRUE(c.StartAgent(1).ok());
  EXPECT_EQ(c.agent_address(1), agent1);
  EXPECT_TRUE(absl::IsFailedPrecondition(c.StartAgent(1)));
  ASSERT_TRUE(c.RestartCoordinator().ok());
  EXPECT_EQ(c.coordinator_address(), coordinator);

  std::ifstream log(c.agent_log(1));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("--db=" + c.agent_db(1)));
  EXPECT_THAT(text, HasSubstr("--coordinator=" + coordinator));
  EXPECT_THAT(text, HasSubstr("--name=agent1 --lock_timeout=1s"));
  EXPECT_THAT(text, HasSubstr("--listen=" + agent1));  // the restart
  std::ifstream coordinator_log(c.coordinator_log());
  std::string coordinator_text((std::istreambuf_iterator<char>(coordinator_log)),
                               std::istreambuf_iterator<char>());
  EXPECT_THAT(coordinator_text,
              HasSubstr("--data-dir=" + c.coordinator_data_dir() + " --cluster-id=c9"));

  ASSERT_TRUE(c.agent(0)->Kill9().ok());
  EXPECT_THAT(c.CheckRunning().message(), HasSubstr("agent agent0"));
  ASSERT_TRUE(c.StartAgent(0).ok());  // a dead daemon may be started again
  EXPECT_TRUE(c.StopAll().ok());
}

}  // namespace
}  // namespace txcoord::testing
