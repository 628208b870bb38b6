// The registry as a client sees it: every node record under
// <prefix>/nodes/, read once, then kept current by a watch. When etcd is
// unreachable the last view is kept and used (running transactions go on);
// the watch is re-established with backoff (read again, then watch from
// the revision read), on the given Scheduler.
#ifndef TXCOORD_CLUSTER_DISCOVERY_H_
#define TXCOORD_CLUSTER_DISCOVERY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/callback_gate.h"
#include "cluster/etcd.h"
#include "cluster/node_record.h"
#include "common/scheduler.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::cluster {

struct DiscoveryOptions {
  std::string prefix = kDefaultPrefix;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// Thread-safe.
class Discovery final {
 public:
  // `etcd` and `scheduler` must outlive this object.
  Discovery(Etcd* etcd, Scheduler* scheduler, DiscoveryOptions options = {});
  ~Discovery();  // stops the watch and any retry

  // Reads the view once and starts the watch. An unreachable etcd is an
  // error naming the prefix and the endpoints tried.
  absl::Status Start();

  // Serving (not draining) coordinators of `service`, sorted by node id.
  // UNAVAILABLE naming the key prefix and etcd's endpoints when there are
  // none ("no coordinator of service txcoord registered under
  // /txcoord/nodes/coordinator/txcoord/ in etcd at ...").
  absl::StatusOr<std::vector<NodeRecord>> Coordinators(const std::string& service);
  // The coordinator whose node id is `node_id` (any service, draining or
  // not): where every call for a txid it issued goes. NOT_FOUND naming the
  // node id, the prefix and the endpoints when it is not registered.
  absl::StatusOr<NodeRecord> Coordinator(const std::string& node_id);
  // The agents registered for `service` (one in the usual deployment),
  // sorted by node id; UNAVAILABLE like Coordinators when none.
  absl::StatusOr<std::vector<NodeRecord>> Agents(const std::string& service);
  // Every record in the view.
  std::vector<NodeRecord> All();

  // Called (on the watch's thread) after every change to the view.
  void OnChange(std::function<void()> fn);

  int64_t revision();  // the etcd revision the view is current to
  bool watching();     // false while etcd is unreachable and the view may be stale
  // txcoord_discovery_nodes, txcoord_discovery_watching,
  // txcoord_discovery_resyncs_total.
  void AddMetrics(MetricsRegistry* registry);

 private:
  // Read by the metrics' callbacks, which may outlive this object.
  struct Stats {
    std::atomic<int64_t> nodes{0};
    std::atomic<bool> watching{false};
    std::atomic<uint64_t> resyncs{0};
  };

  // Reads every record, replaces the view with them, and watches from the
  // revision read. The error names the prefix and etcd's endpoints.
  absl::Status Resync() ABSL_LOCKS_EXCLUDED(mu_);
  void OnEvents(uint64_t generation, const std::vector<WatchEvent>& events, int64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnWatchError(uint64_t generation, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleResyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunScheduledResync() ABSL_LOCKS_EXCLUDED(mu_);
  // The record at kv.key, or nothing if it does not parse (logged once per key).
  void ApplyPutLocked(const KeyValue& kv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls the OnChange functions, one notification at a time.
  void Notify() ABSL_LOCKS_EXCLUDED(mu_, notify_mu_);
  // "under <key_prefix> in etcd at ... (view at revision N, watching)".
  std::string WhereLocked(const std::string& key_prefix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<NodeRecord> UnderLocked(const std::string& key_prefix)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Etcd* const etcd_;
  Scheduler* const scheduler_;
  const DiscoveryOptions options_;
  const std::string nodes_prefix_;  // <prefix>/nodes/
  const absl::Duration min_backoff_;
  const absl::Duration max_backoff_;
  const std::shared_ptr<CallbackGate> gate_ = std::make_shared<CallbackGate>();
  const std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();

  absl::Mutex notify_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  std::map<std::string, NodeRecord> view_ ABSL_GUARDED_BY(mu_);  // by key: sorted by node id
  // Keys whose record does not parse (logged once), while they stay so.
  std::set<std::string> bad_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool watching_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped by every new watch: callbacks of an older one are ignored.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<WatchHandle> watch_ ABSL_GUARDED_BY(mu_);
  Scheduler::TimerId resync_timer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  bool outage_logged_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 jitter_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<std::function<void()>>> on_change_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_DISCOVERY_H_
