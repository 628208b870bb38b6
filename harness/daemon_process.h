// One txcoord daemon (`txcoord`, `txagent`) run as a real child process, for
// integration and crash tests and the demo: started with its arguments,
// known ready once it prints "... listening on HOST:PORT" on stdout, and
// stopped gently (SIGTERM) or not (SIGKILL).
//
//   auto coordinator = DaemonProcess::Start({*CoordinatorBinary(),
//       {"--listen=127.0.0.1:0", "--data-dir=" + dir}, dir + "/txcoord.log"});
//   Client client((*coordinator)->address());
//   (*coordinator)->Kill9();
#ifndef TXCOORD_HARNESS_DAEMON_PROCESS_H_
#define TXCOORD_HARNESS_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord::testing {

struct DaemonOptions {
  std::string binary;             // path of the executable
  std::vector<std::string> args;  // argv[1..]
  std::string log_path;           // the child's stderr is appended here
  // How long the child may take to print its "listening on" line(s).
  absl::Duration start_timeout = absl::Seconds(30);
  // The child also serves HTTP (--http_listen): Start waits for its
  // "<name> http listening on HOST:PORT" line too.
  bool http = false;
  // The child also serves a framed port (--framed_listen): Start waits for
  // its "<name> framed listening on HOST:PORT" line too.
  bool framed = false;
  // For programs other than txcoord's own, which announce readiness in
  // their log (nats-server: "Server is ready"): if set, the child's stdout
  // goes to the log as well, and Start returns once what the child wrote
  // there since this start contains this text. address() stays empty.
  std::string ready_log_text;
};

// How a child ended.
struct ExitStatus {
  int code = 0;    // exit code, if it exited
  int signal = 0;  // the signal that killed it, else 0

  bool Clean() const { return signal == 0 && code == 0; }
  std::string ToString() const;  // "exit 0", "killed by signal 9 (Killed)"
};

// Thread-safe: every method may be called from any thread. The child is
// killed with SIGKILL when the object is destroyed while it still runs, and
// also when this process dies (PR_SET_PDEATHSIG), so a crashed test leaves
// no daemons behind.
class DaemonProcess final {
 public:
  // Forks and execs the binary in a process group of its own, with stdin
  // from /dev/null, stdout to a pipe
  // and stderr appended to options.log_path (after a header line naming the
  // command). Returns once the child printed its "listening on HOST:PORT"
  // line (and, with options.http, its HTTP one). If it exits first or stays silent past
  // start_timeout, it is killed and the error quotes the end of its log.
  static absl::StatusOr<std::unique_ptr<DaemonProcess>> Start(DaemonOptions options);

  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  // "HOST:PORT" from the listening line.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // "HOST:PORT" from the HTTP listening line; empty unless options.http.
  const std::string& http_address() const { return http_address_; }
  // "HOST:PORT" from the framed listening line; empty unless options.framed.
  const std::string& framed_address() const { return framed_address_; }
  const std::string& log_path() const { return options_.log_path; }
  const DaemonOptions& options() const { return options_; }

  // False once the child has exited (whether or not it was reaped yet).
  bool Running();

  // Sends `signal` to the child only (not its group). OK if it has exited.
  absl::Status Signal(int signal) { return Signal(signal, /*whole_group=*/false); }

  // SIGKILL to the child and its process group (anything it started), then
  // waits for the child. OK if it had already exited.
  absl::Status Kill9();

  // SIGTERM to the child, then waits up to `timeout` for it to exit. Past the
  // timeout the child is killed with SIGKILL and DEADLINE_EXCEEDED
  // returned. A child that had already exited just reports its status.
  absl::StatusOr<ExitStatus> Terminate(absl::Duration timeout = absl::Seconds(15));

  // Waits up to `timeout` (InfiniteDuration: forever) for the child to exit
  // on its own. DEADLINE_EXCEEDED if it is still running.
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout);

  // The last `max_bytes` of the child's log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  DaemonProcess(DaemonOptions options, pid_t pid, int pidfd, int stdout_fd);
  absl::Status ReadListeningLine();
  absl::Status WaitForLogText(int64_t log_offset);
  absl::Status Signal(int signal, bool whole_group);
  // Reaps the child if it has exited; true if it has (now or before).
  bool ReapIfExited() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Describe() const;

  const DaemonOptions options_;
  const pid_t pid_;
  // A pidfd: readable once the child exits, and a race-free target for
  // signals (a pid may be reused after the child is reaped; a pidfd never).
  const int pidfd_;
  // Kept open after the listening line: closing it would make a later
  // write by the child die of SIGPIPE. -1 with options.ready_log_text.
  const int stdout_fd_;
  std::string address_;
  int port_ = 0;
  std::string http_address_;
  std::string framed_address_;

  absl::Mutex mu_;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  ExitStatus exit_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_DAEMON_PROCESS_H_
