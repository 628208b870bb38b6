// The registry as a client sees it: every node record under
// <prefix>/nodes/, read once, then kept current by a watch. When etcd is
// unreachable the last view is kept and used (running transactions go on);
// the watch is re-established with backoff (read again, then watch from
// the revision read), on the given Scheduler.
#ifndef TXCOORD_CLUSTER_DISCOVERY_H_
#define TXCOORD_CLUSTER_DISCOVERY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
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
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_DISCOVERY_H_
