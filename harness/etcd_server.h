// A real etcd run as child processes, for the tests of cluster mode: one
// member, or a cluster of several on one machine, with its data in a
// directory and on loopback ports chosen once and kept across restarts, so
// that clients reconnect to the same endpoints and find the same data.
//
//   auto etcd = EtcdServer::Create();  // one member, answering
//   EtcdClient client({.endpoints = (*etcd)->endpoints()});
//   (*etcd)->Stop();                   // SIGTERM; clients see UNAVAILABLE
//   (*etcd)->Start();                  // same ports, same data
#ifndef TXCOORD_HARNESS_ETCD_SERVER_H_
#define TXCOORD_HARNESS_ETCD_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "harness/daemon_process.h"
#include "harness/temp_dir.h"

namespace txcoord::testing {

struct EtcdServerOptions {
  int members = 1;  // 3 for a cluster that survives the loss of one
  // Where the members keep their data (dir/m0, dir/m1, ...) and logs
  // (dir/etcd-m0.log, ...); created if needed. Empty: a fresh temporary
  // directory, removed with the object.
  std::string dir;
  // How long a start may take until every member answers.
  absl::Duration start_timeout = absl::Seconds(30);
};

// Thread-safe. Members still running when the object is destroyed, or when
// this process dies, are killed (SIGKILL; see DaemonProcess).
class EtcdServer final {
 public:
  // Starts the members (etcd from EtcdBinary(), so NOT_FOUND naming the
  // Debian package if it is missing) and returns once each answers a
  // linearizable read, i.e. the cluster has a leader. The error quotes the
  // end of a failed member's log.
  static absl::StatusOr<std::unique_ptr<EtcdServer>> Create(EtcdServerOptions options = {});

  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  int members() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT", member 0's client endpoint / member `member`'s.
  const std::string& endpoint(int member = 0) const;
  // Every member's client endpoint, in member order.
  std::vector<std::string> endpoints() const;
  // "etcd://127.0.0.1:PORT,..." naming every member, for --registry.
  std::string registry_url() const;
  const std::string& dir() const { return dir_; }
  std::string log_path(int member = 0) const;

  // SIGTERM to every running member, then waits for each to exit (a clean
  // shutdown). OK for members not running.
  absl::Status Stop();
  // SIGKILL to every running member, then waits for each.
  absl::Status Kill();
  // Starts every member that is not running, with its ports and data, and
  // returns once each answers (as Create).
  absl::Status Start();

  // The same for one member. StartMember returns once the member answers,
  // which takes a quorum of the cluster running.
  absl::Status StopMember(int member);
  absl::Status KillMember(int member);
  absl::Status StartMember(int member);
  bool Running(int member = 0);

  // The last `max_bytes` of a member's log, for failure messages.
  std::string LogTail(int member = 0, size_t max_bytes = 4000);

 private:
  struct Member {
    std::string name;  // m0, m1, ...
    int client_port = 0;
    int peer_port = 0;
    std::string endpoint;  // 127.0.0.1:client_port
  };

  EtcdServer(std::string binary, std::string dir, absl::Duration start_timeout,
             std::vector<Member> members);
  absl::Status CheckMember(int member) const;
  // Starts the process of each of `which` that is not running, then waits
  // until each answers.
  absl::Status StartLocked(const std::vector<int>& which) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Launch(int member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AwaitAnswer(int member, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Set by Create once the members answer; declared first, so removed
  // after the members are gone.
  std::optional<TempDir> temp_dir_;
  const std::string binary_;
  const std::string dir_;
  const absl::Duration start_timeout_;
  const std::vector<Member> members_;
  const std::string initial_cluster_;  // m0=http://127.0.0.1:PEER,...
  const std::string cluster_token_;    // tells this cluster from others on the machine

  absl::Mutex mu_;
  // One per member; null until first started.
  std::vector<std::unique_ptr<DaemonProcess>> processes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_ETCD_SERVER_H_
