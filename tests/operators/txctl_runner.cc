#include "tests/operators/txctl_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "harness/binaries.h"
#include "harness/spawn.h"

namespace txcoord::testing {
namespace {

constexpr absl::Duration kHardLimit = absl::Minutes(1);

}  // namespace

absl::StatusOr<std::string> TxctlBinary() {
  if (const char* env = std::getenv("TXCTL_BIN"); env != nullptr && *env != '\0') return env;
  absl::StatusOr<std::string> build = BuildDir();
  if (!build.ok()) return build.status();
  std::string path = (std::filesystem::path(*build) / "cli" / "txctl").string();
  if (access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(path, " is missing (build target txctl)"));
  }
  return path;
}

std::ostream& operator<<(std::ostream& os, const TxctlResult& r) {
  return os << "`" << r.command << "` exited " << r.exit_code << "\n--- stdout:\n"
            << r.out << "--- stderr:\n"
            << r.err;
}

TxctlResult RunTxctl(const std::vector<std::string>& args) {
  TxctlResult result;
  absl::StatusOr<std::string> binary = TxctlBinary();
  if (!binary.ok()) {
    result.err = std::string(binary.status().message());
    return result;
  }
  std::vector<std::string> argv = {*binary};
  argv.insert(argv.end(), args.begin(), args.end());
  result.command = absl::StrJoin(argv, " ");
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = "pipe2 failed";
    return result;
  }
  const int dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  absl::StatusOr<pid_t> pid = SpawnChild(argv, dev_null, out_pipe[1], err_pipe[1]);
  close(dev_null);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (!pid.ok()) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.err = std::string(pid.status().message());
    return result;
  }
  // Both pipes at once: a child that fills one while we block on the
  // other would never finish.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const absl::Time deadline = absl::Now() + kHardLimit;
  while (open_fds > 0 && absl::Now() < deadline) {
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (open_fds > 0) kill(*pid, SIGKILL);
  for (const pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace txcoord::testing
