#include "harness/daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "harness/spawn.h"

namespace txcoord::testing {
namespace {

constexpr absl::string_view kListeningOn = "listening on ";
constexpr absl::string_view kHttpListeningOn = "http listening on ";
constexpr absl::string_view kFramedListeningOn = "framed listening on ";
// How long Kill9 waits for a SIGKILLed child to be gone; only a child stuck
// in the kernel (e.g. on a dead disk) takes longer.
constexpr absl::Duration kKillWait = absl::Seconds(30);

// Closes a descriptor on scope exit unless released.
class Fd final {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C", so its
// wrappers do not link from C++.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// poll(2)'s timeout for the time left until `deadline`: rounded up so that
// we never spin on a zero timeout just before it; -1 means forever.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX));
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "txcoord listening on 127.0.0.1:4711" -> address and port.
bool ParseListeningLine(absl::string_view line, std::string* address, int* port) {
  size_t at = line.find(kListeningOn);
  if (at == absl::string_view::npos) return false;
  absl::string_view rest = absl::StripAsciiWhitespace(line.substr(at + kListeningOn.size()));
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int parsed = 0;
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &parsed) || parsed <= 0 || parsed > 65535) {
    return false;
  }
  *address = std::string(rest);
  *port = parsed;
  return true;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0) return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  return absl::StrCat("exit ", code);
}

absl::StatusOr<std::unique_ptr<DaemonProcess>> DaemonProcess::Start(DaemonOptions options) {
  if (options.binary.empty()) return absl::InvalidArgumentError("DaemonProcess: no binary");
  if (options.log_path.empty()) return absl::InvalidArgumentError("DaemonProcess: no log path");
  std::vector<std::string> argv = {options.binary};
  argv.insert(argv.end(), options.args.begin(), options.args.end());

  // O_CLOEXEC everywhere: daemons started concurrently from other threads
  // must not inherit each other's descriptors (a stray copy of a stdout
  // pipe's write end would hide the owner's exit).
  Fd log(open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log.get() < 0) return ErrnoError(absl::StrCat("open ", options.log_path));
  // Appending keeps the history of a restarted daemon in one file; the
  // header marks where each run starts.
  std::string header =
      absl::StrCat("==== harness ", absl::FormatTime(absl::Now(), absl::UTCTimeZone()), ": ",
                   absl::StrJoin(argv, " "), "\n");
  (void)!write(log.get(), header.data(), header.size());
  const bool ready_in_log = !options.ready_log_text.empty();
  const int64_t log_offset = lseek(log.get(), 0, SEEK_END);
  Fd dev_null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (dev_null.get() < 0) return ErrnoError("open /dev/null");
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("pipe2");
  Fd stdout_read(pipe_fds[0]);
  Fd stdout_write(pipe_fds[1]);

  absl::StatusOr<pid_t> pid =
      SpawnChild(argv, dev_null.get(), ready_in_log ? log.get() : stdout_write.get(), log.get());
  if (!pid.ok()) return pid.status();
  // Only the child may hold the write end, so that its exit reads as EOF.
  close(stdout_write.release());
  if (ready_in_log) close(stdout_read.release());

  // Opened before anyone reaps the child, so it names this child for sure.
  Fd pidfd(PidfdOpen(*pid));
  if (pidfd.get() < 0) {
    absl::Status error = ErrnoError("pidfd_open (needs Linux 5.3 or newer)");
    kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
    return error;
  }

  std::unique_ptr<DaemonProcess> daemon(
      new DaemonProcess(std::move(options), *pid, pidfd.release(), stdout_read.release()));
  absl::Status ready =
      ready_in_log ? daemon->WaitForLogText(log_offset) : daemon->ReadListeningLine();
  if (!ready.ok()) {
    (void)daemon->Kill9();
    return absl::Status(ready.code(), absl::StrCat(ready.message(), "\n---- ", daemon->log_path(),
                                                   " ends with:\n", daemon->LogTail()));
  }
  return daemon;
}

DaemonProcess::DaemonProcess(DaemonOptions options, pid_t pid, int pidfd, int stdout_fd)
    : options_(std::move(options)), pid_(pid), pidfd_(pidfd), stdout_fd_(stdout_fd) {}

DaemonProcess::~DaemonProcess() {
  if (Running()) (void)Kill9();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  close(pidfd_);
}

std::string DaemonProcess::Describe() const {
  return absl::StrCat(Basename(options_.binary), " (pid ", pid_, ")");
}

absl::Status DaemonProcess::ReadListeningLine() {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  std::string pending;  // stdout read but not yet ending in a newline
  std::string other_output;
  for (;;) {
    for (size_t newline; (newline = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      int other_port = 0;
      if (absl::StrContains(line, kHttpListeningOn)
              ? ParseListeningLine(line, &http_address_, &other_port)
          : absl::StrContains(line, kFramedListeningOn)
              ? ParseListeningLine(line, &framed_address_, &other_port)
              : ParseListeningLine(line, &address_, &port_)) {
        if (port_ != 0 && (!options_.http || !http_address_.empty()) &&
            (!options_.framed || !framed_address_.empty())) {
          return absl::OkStatus();
        }
        continue;
      }
      absl::StrAppend(&other_output, line, "\n");
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          Describe(), " did not print \"",
          port_ == 0
              ? kListeningOn
              : (options_.http && http_address_.empty() ? kHttpListeningOn : kFramedListeningOn),
          "HOST:PORT\" within ", absl::FormatDuration(options_.start_timeout),
          "; stdout so far: \"", other_output, pending, "\""));
    }
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {pidfd_, POLLIN, 0}};
    int ready = poll(fds, 2, PollTimeoutMs(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    // Output first: a child may print its line and exit at once.
    if (fds[0].revents != 0) {
      char buffer[4096];
      ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
      if (n > 0) {
        pending.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read child stdout");
      // EOF: the child closed its stdout, which in practice means it exited.
    } else if (fds[1].revents == 0) {
      continue;  // poll timed out; the deadline check above reports it
    }
    absl::StatusOr<ExitStatus> exit = Wait(options_.start_timeout);
    return absl::UnavailableError(
        absl::StrCat(Describe(), " stopped before listening (",
                     exit.ok() ? exit->ToString() : std::string("closed its stdout, still running"),
                     "); stdout: \"", other_output, pending, "\""));
  }
}

absl::Status DaemonProcess::WaitForLogText(int64_t log_offset) {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  // The log is a file, not a pipe, so there is nothing to block on until it
  // grows: look again every few milliseconds, and wake at once if the child
  // exits.
  constexpr int kLookEveryMs = 10;
  const auto logged = [&] {
    std::ifstream file(options_.log_path, std::ios::binary);
    file.seekg(log_offset);
    std::string written((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    return absl::StrContains(written, options_.ready_log_text);
  };
  for (;;) {
    if (logged()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(Describe(), " did not log \"", options_.ready_log_text, "\" within ",
                       absl::FormatDuration(options_.start_timeout)));
    }
    pollfd fd = {pidfd_, POLLIN, 0};
    int ready = poll(&fd, 1, std::min(kLookEveryMs, PollTimeoutMs(deadline)));
    if (ready < 0 && errno != EINTR) return ErrnoError("poll pidfd");
    // A child that logged its line and then ended (a crash test's failpoint
    // soon after start) did start: its exit is the caller's to see.
    if (ready > 0 && !logged()) {
      absl::StatusOr<ExitStatus> exit = Wait(options_.start_timeout);
      return absl::UnavailableError(
          absl::StrCat(Describe(), " stopped before logging \"", options_.ready_log_text, "\" (",
                       exit.ok() ? exit->ToString() : std::string("status unknown"), ")"));
    }
  }
}

bool DaemonProcess::ReapIfExited() {
  if (reaped_) return true;
  int status = 0;
  pid_t result;
  do {
    result = waitpid(pid_, &status, WNOHANG);
  } while (result < 0 && errno == EINTR);
  if (result == 0) return false;
  reaped_ = true;
  if (result < 0) {
    exit_status_ = ExitStatus{-1, 0};  // reaped by someone else: status lost
  } else if (WIFSIGNALED(status)) {
    exit_status_ = ExitStatus{0, WTERMSIG(status)};
  } else {
    exit_status_ = ExitStatus{WEXITSTATUS(status), 0};
  }
  return true;
}

bool DaemonProcess::Running() {
  absl::MutexLock lock(&mu_);
  return !ReapIfExited();
}

absl::Status DaemonProcess::Signal(int signal, bool whole_group) {
  absl::MutexLock lock(&mu_);
  if (ReapIfExited()) return absl::OkStatus();
  if (PidfdSendSignal(pidfd_, signal) != 0 && errno != ESRCH) {
    return ErrnoError(absl::StrCat("signal ", signal, " to ", Describe()));
  }
  // The group id stays ours until the child is reaped (a zombie leader
  // keeps it), and we only get here before reaping.
  if (whole_group) kill(-pid_, signal);
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> DaemonProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (ReapIfExited()) return exit_status_;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(Describe(), " still running after ", absl::FormatDuration(timeout)));
    }
    // The pidfd turns readable when the child exits. Polled without the
    // lock so that other threads may signal the child meanwhile.
    pollfd fd = {pidfd_, POLLIN, 0};
    if (poll(&fd, 1, PollTimeoutMs(deadline)) < 0 && errno != EINTR)
      return ErrnoError("poll pidfd");
  }
}

absl::Status DaemonProcess::Kill9() {
  if (absl::Status status = Signal(SIGKILL, /*whole_group=*/true); !status.ok()) return status;
  return Wait(kKillWait).status();
}

absl::StatusOr<ExitStatus> DaemonProcess::Terminate(absl::Duration timeout) {
  // Only the daemon itself: a clean shutdown of its helpers is its job.
  if (absl::Status status = Signal(SIGTERM, /*whole_group=*/false); !status.ok()) return status;
  absl::StatusOr<ExitStatus> exit = Wait(timeout);
  if (absl::IsDeadlineExceeded(exit.status())) {
    (void)Kill9();
    return absl::DeadlineExceededError(absl::StrCat(Describe(), " did not exit within ",
                                                    absl::FormatDuration(timeout),
                                                    " of SIGTERM; killed it"));
  }
  return exit;
}

std::string DaemonProcess::LogTail(size_t max_bytes) const {
  std::ifstream file(options_.log_path, std::ios::binary | std::ios::ate);
  if (!file) return absl::StrCat("(cannot read ", options_.log_path, ")");
  std::streamoff size = file.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes));
  file.seekg(start);
  std::string tail(static_cast<size_t>(size - start), '\0');
  file.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

}  // namespace txcoord::testing
