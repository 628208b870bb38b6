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
#include "cluster/etcd.h"
#include "cluster/node_record.h"
#include "common/scheduled_scope.h"
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
  // Reads the whole prefix into the view, then watches from there.
  absl::Status ReadAndWatch();
  void OnEvents(const std::vector<WatchEvent>& events, int64_t revision);
  void OnError(const absl::Status& status);
  // Scheduled after a lost watch: ReadAndWatch, again later if it fails.
  void Resync();
  // Parses a record, logging a bad one once per key.
  bool Parse(const KeyValue& kv, NodeRecord* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Where(const std::string& prefix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Changed();

  Etcd* const etcd_;
  const DiscoveryOptions options_;
  const std::string prefix_;  // NodesPrefix(options.prefix)
  ScheduledScope scope_;
  // Destroying a watch waits for its thread, whose callbacks take mu_:
  // swap it out under mu_ and destroy it without.
  absl::Mutex mu_;
  std::map<std::string, NodeRecord> view_ ABSL_GUARDED_BY(mu_);  // by key
  std::set<std::string> bad_keys_ ABSL_GUARDED_BY(mu_);          // logged once
  std::unique_ptr<WatchHandle> watch_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool watching_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 jitter_ ABSL_GUARDED_BY(mu_){0x5eed};
  std::vector<std::function<void()>> on_change_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> resyncs_{0};
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_DISCOVERY_H_
