#include "harness/spawn.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace txcoord::testing {
namespace {

struct Request {
  char* const* argv = nullptr;
  int fds[3] = {-1, -1, -1};
  pid_t parent = 0;
  pid_t pid = -1;
  int fork_errno = 0;
  bool done = false;
};

// Only async-signal-safe calls from here to exec: the parent is
// multi-threaded, and the child inherits whatever locks other threads held
// at fork time.
[[noreturn]] void RunChild(const Request& request) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // An ignored SIGTERM or SIGPIPE survives exec; a test process that ignores
  // them must not hand that on to the daemons it tests.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) signal(sig, SIG_DFL);
  // Its own process group, so that a SIGKILL to the group also ends any
  // helper process the daemon started (set here and in the parent, so that
  // it holds whichever runs first).
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork and prctl: then no signal comes.
  if (getppid() != request.parent) _exit(127);
  for (int target = 0; target < 3; ++target) {
    if (dup2(request.fds[target], target) < 0) _exit(127);
  }
  // Other daemons' pipes, listening sockets and database files of the test
  // process must not stay open in this child.
  close_range(3, ~0U, 0);
  execv(request.argv[0], request.argv);
  static const char kMessage[] = "harness: execv failed for ";
  (void)!write(2, kMessage, sizeof(kMessage) - 1);
  (void)!write(2, request.argv[0], strlen(request.argv[0]));
  (void)!write(2, "\n", 1);
  _exit(127);
}

class Spawner final {
 public:
  static Spawner& Get() {
    // Leaked: the thread must outlive every static destructor.
    static Spawner* spawner = new Spawner;
    return *spawner;
  }

  void Spawn(Request* request) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Spawner::Idle));
    pending_ = request;
    mu_.Await(absl::Condition(&request->done));
  }

 private:
  Spawner() {
    std::thread([this] { Loop(); }).detach();
  }

  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == nullptr; }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ != nullptr; }

  [[noreturn]] void Loop() {
    for (;;) {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Spawner::HasWork));
      Request* request = pending_;
      request->pid = fork();
      if (request->pid == 0) RunChild(*request);
      if (request->pid < 0) {
        request->fork_errno = errno;
      } else {
        setpgid(request->pid, request->pid);
      }
      request->done = true;
      pending_ = nullptr;
    }
  }

  absl::Mutex mu_;
  Request* pending_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace

absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv, int stdin_fd, int stdout_fd,
                                 int stderr_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("SpawnChild: empty argv");
  // Built before fork: the child may not allocate.
  std::vector<char*> pointers;
  pointers.reserve(argv.size() + 1);
  for (const std::string& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
  pointers.push_back(nullptr);

  Request request;
  request.argv = pointers.data();
  request.fds[0] = stdin_fd;
  request.fds[1] = stdout_fd;
  request.fds[2] = stderr_fd;
  request.parent = getpid();
  Spawner::Get().Spawn(&request);
  if (request.pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(request.fork_errno)));
  }
  return request.pid;
}

}  // namespace txcoord::testing
