// A real `nats-server -js` run as a child process, for the tests,
// benchmarks and demo of transactional messages: its JetStream store in a
// directory the caller owns, on a loopback port chosen once and kept across
// restarts so that clients reconnect to the same URL.
//
//   auto nats = NatsServer::Start(dir.Path("nats"));
//   Consumer::Create({.url = (*nats)->url(), ...});
//   (*nats)->Kill9();
//   (*nats)->Restart();  // same port, same store: streams survive
#ifndef TXCOORD_HARNESS_NATS_SERVER_H_
#define TXCOORD_HARNESS_NATS_SERVER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "harness/daemon_process.h"

namespace txcoord::testing {

// Thread-safe. The server is killed (SIGKILL) when the object is destroyed
// while it runs, and when this process dies (see DaemonProcess).
class NatsServer final {
 public:
  // Creates `dir` if needed and starts nats-server with JetStream, its store
  // in dir/jetstream and its log in dir/nats-server.log, listening on
  // 127.0.0.1 at a port that was free a moment ago. Returns once the server
  // logged "Server is ready" (JetStream, and any stream in the store,
  // recovered). NOT_FOUND if nats-server is not installed.
  static absl::StatusOr<std::unique_ptr<NatsServer>> Start(
      const std::string& dir, absl::Duration start_timeout = absl::Seconds(30));

  ~NatsServer() = default;
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // "nats://127.0.0.1:PORT"; the same for the object's whole life.
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  std::string log_path() const;

  // SIGKILL, then waits until it is gone: no clean shutdown, so the store is
  // left as a crash leaves it. OK if it was not running.
  absl::Status Kill9();
  // SIGTERM, then waits up to `timeout` (a clean shutdown). OK if it was
  // not running.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(15));
  // Starts the server again, with the same port and store, once it is no
  // longer running (FAILED_PRECONDITION otherwise); returns once it is ready.
  absl::Status Restart();
  bool Running();
  // The server's process id while it runs, else 0 (for CPU accounting).
  pid_t pid();

  // The last `max_bytes` of the server's log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000);

 private:
  NatsServer(std::string binary, std::string dir, int port, absl::Duration start_timeout);
  absl::Status Launch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string binary_;
  const std::string dir_;
  const int port_;
  const std::string url_;
  const absl::Duration start_timeout_;

  absl::Mutex mu_;
  std::unique_ptr<DaemonProcess> process_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_NATS_SERVER_H_
