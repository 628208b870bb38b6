// A whole txcoord deployment on this machine for integration and crash
// tests and the demo: one `txcoord` (or several, for cluster mode) and N
// `txagent`s (each with its own SQLite file), all real processes that can be
// stopped, killed and restarted on the same data and the same port.
//
//   ClusterOptions options;
//   options.agents = 3;
//   absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
//   Client client((*cluster)->coordinator_address());
//   (*cluster)->KillAgent(1);  (*cluster)->StartAgent(1);  // same db, same port
#ifndef TXCOORD_HARNESS_CLUSTER_H_
#define TXCOORD_HARNESS_CLUSTER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/daemon_process.h"
#include "harness/temp_dir.h"

namespace txcoord::testing {

struct ClusterOptions {
  int agents = 3;
  // Participant names; empty means "agent0", "agent1", ...
  std::vector<std::string> agent_names;
  // Where data and logs go; empty means a fresh temporary directory that the
  // cluster removes when destroyed (unless keep_dir).
  std::string dir;
  bool keep_dir = false;
  // --cluster-id of the coordinator; empty leaves the daemon's default.
  std::string cluster_id;
  // Coordinators to run (cluster mode: give each its flags, e.g.
  // --registry, through per_coordinator_flags). Coordinator i > 0 has
  // --cluster-id "c<i>" unless coordinator_ids names them all; agents are
  // started with --coordinator of coordinator 0.
  int coordinators = 1;
  std::vector<std::string> coordinator_ids;
  std::vector<std::vector<std::string>> per_coordinator_flags;
  // Extra flags, e.g. {"--prepare_timeout=1s"} or {"--lock_timeout=500ms"}.
  std::vector<std::string> coordinator_flags;
  std::vector<std::string> agent_flags;
  // Flags of agent i only (e.g. its own certificate), after agent_flags;
  // missing entries mean none.
  std::vector<std::vector<std::string>> per_agent_flags;
  // Binaries; empty means CoordinatorBinary() / AgentBinary().
  std::string coordinator_binary;
  std::string agent_binary;
  absl::Duration start_timeout = absl::Seconds(30);
  absl::Duration stop_timeout = absl::Seconds(15);
  // Also serve HTTP/JSON (--http_listen) on a free loopback port each;
  // restarts reuse it.
  bool http = false;
  // The address the HTTP ports bind (0.0.0.0 to be reached from a network
  // namespace as well as from loopback).
  std::string http_host = "127.0.0.1";
  // Agents also serve their framed port (--framed_listen) on a free loopback
  // port each; restarts reuse it.
  bool agent_framed_port = false;
  // The same for the coordinators.
  bool coordinator_framed_port = false;
};

// Files under dir(): coordinator/ (its --data-dir), coordinator.log,
// <name>.db and <name>.log per agent; coordinator<i>/ and coordinator<i>.log
// for coordinator i > 0.
//
// Not thread-safe: start, stop, kill and restart from one thread at a time.
// The accessors of names, paths and addresses may be called from any thread
// (they never change after Start: a restart reuses the port).
class Cluster final {
 public:
  // Starts the coordinator, then the agents, each on a free port.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(ClusterOptions options);
  // Kills (SIGKILL) whatever still runs; removes a temporary dir unless kept.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& dir() const { return dir_; }
  // Coordinator 0's, unless an index is given.
  const std::string& coordinator_address(int i = 0) const { return coordinators_.at(i).address; }
  // "127.0.0.1:PORT" of the HTTP port; empty unless options.http.
  const std::string& coordinator_http_address(int i = 0) const {
    return coordinators_.at(i).http_address;
  }
  // "127.0.0.1:PORT" of its framed port; empty unless
  // options.coordinator_framed_port.
  const std::string& coordinator_framed_address(int i = 0) const {
    return coordinators_.at(i).framed_address;
  }
  std::string coordinator_data_dir(int i = 0) const;
  std::string coordinator_log(int i = 0) const;
  int coordinator_count() const { return static_cast<int>(coordinators_.size()); }
  // Its --cluster-id (empty: the daemon's default).
  const std::string& coordinator_id(int i) const { return coordinators_.at(i).id; }
  int agent_count() const { return static_cast<int>(agents_.size()); }
  const std::string& agent_name(int i) const { return agents_.at(i).name; }
  const std::string& agent_address(int i) const { return agents_.at(i).address; }
  const std::string& agent_http_address(int i) const { return agents_.at(i).http_address; }
  // "127.0.0.1:PORT" of its framed port; empty unless options.agent_framed_port.
  const std::string& agent_framed_address(int i) const { return agents_.at(i).framed_address; }
  std::string agent_db(int i) const;
  std::string agent_log(int i) const;
  std::vector<std::string> agent_addresses() const;
  std::vector<std::string> agent_dbs() const;

  // The running process, or nullptr while stopped. Valid until that daemon
  // is next started, stopped or killed through the cluster.
  DaemonProcess* coordinator(int i = 0) { return coordinators_.at(i).process.get(); }
  DaemonProcess* agent(int i) { return agents_.at(i).process.get(); }

  // Start: FAILED_PRECONDITION if it is running. A daemon that died on its
  // own may be started again. Restarts listen on the port of the first run.
  // Stop: SIGTERM and wait; an error unless it exits with status 0.
  // Kill: SIGKILL and wait (a crash).
  absl::Status StartCoordinator(int i = 0);
  absl::Status StopCoordinator(int i = 0);
  absl::Status KillCoordinator(int i = 0);
  absl::Status RestartCoordinator(int i = 0);  // Stop (if running), then Start
  absl::Status StartAgent(int i);
  absl::Status StopAgent(int i);
  absl::Status KillAgent(int i);
  absl::Status RestartAgent(int i);

  // OK if every daemon that should run (started and not stopped or killed
  // through the cluster) still runs; else names the ones that died, with
  // their exit status and the end of their logs.
  absl::Status CheckRunning();

  // Stops every running daemon with SIGTERM, all at once. The error names
  // each daemon that did not exit with status 0.
  absl::Status StopAll();

  // Keeps the directory after destruction (e.g. to read logs on failure).
  void KeepDir();

  // Extra flags for the next starts of one daemon, after the cluster-wide
  // ones (e.g. {"--failpoints=after-commit-logged=crash"}; {} clears them).
  void SetCoordinatorExtraFlags(std::vector<std::string> flags, int i = 0) {
    coordinators_.at(i).extra_flags = std::move(flags);
  }
  void SetAgentExtraFlags(int i, std::vector<std::string> flags) {
    agents_.at(i).extra_flags = std::move(flags);
  }

 private:
  struct Coordinator {
    std::string id;
    std::string address;         // "127.0.0.1:PORT" once first started
    std::string http_address;    // likewise, with options.http
    std::string framed_address;  // likewise, with options.coordinator_framed_port
    std::unique_ptr<DaemonProcess> process;
    std::vector<std::string> extra_flags;
  };
  struct Agent {
    std::string name;
    std::string address;         // "127.0.0.1:PORT" once first started
    std::string http_address;    // likewise, with options.http
    std::string framed_address;  // likewise, with options.agent_framed_port
    std::unique_ptr<DaemonProcess> process;
    std::vector<std::string> extra_flags;
  };

  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}
  absl::Status Stop(std::unique_ptr<DaemonProcess>* process);
  // Waits for a signalled daemon to exit (SIGKILL past stop_timeout) and
  // drops it; an error unless it exited with status 0.
  absl::Status AwaitExit(std::unique_ptr<DaemonProcess>* process);
  absl::Status Kill(std::unique_ptr<DaemonProcess>* process);

  ClusterOptions options_;
  std::optional<TempDir> temp_dir_;
  std::string dir_;
  std::vector<Coordinator> coordinators_;
  std::vector<Agent> agents_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_CLUSTER_H_
