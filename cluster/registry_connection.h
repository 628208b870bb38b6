// A process's link to the registry (docs/cluster.md): the etcd client, a
// timer thread of its own for the registry's loops, and, as asked, the
// registration of this process's record and a discovery view. The daemons,
// txctl and client programs open one from the --registry flags.
#ifndef TXCOORD_CLUSTER_REGISTRY_CONNECTION_H_
#define TXCOORD_CLUSTER_REGISTRY_CONNECTION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cluster/discovery.h"
#include "cluster/etcd.h"
#include "cluster/node_record.h"
#include "cluster/registrar.h"
#include "common/timer_queue.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::cluster {

struct RegistryOptions {
  std::string url;  // etcd://HOST:PORT[,...]; empty: no registry
  std::string prefix = kDefaultPrefix;
  absl::Duration ttl = absl::Seconds(5);
  absl::Duration call_timeout = absl::Seconds(2);
};

// From --registry, --registry_prefix, --registry_ttl (cluster_flags.h);
// INVALID_ARGUMENT naming the flag that is wrong.
absl::StatusOr<RegistryOptions> RegistryOptionsFromFlags();

// The version daemons register ("0.1.0").
const char* TxcoordVersion();

class RegistryConnection;

// What a daemon registers about itself: a record with this process's pid,
// start time and version, and --registry_weight (INVALID_ARGUMENT outside
// 1..1000).
absl::StatusOr<NodeRecord> SelfRecord(std::string role, std::string service, std::string node_id,
                                      std::string endpoint, std::string http_endpoint);

// A daemon's registration from the flags: nullptr without --registry; else
// a connection with `record` registered and its metrics added to `metrics`
// (may be null). The error says what to fix.
absl::StatusOr<std::unique_ptr<RegistryConnection>> RegisterFromFlags(const NodeRecord& record,
                                                                      MetricsRegistry* metrics);

class RegistryConnection final {
 public:
  // Connects lazily: nothing is sent to etcd until Register or
  // StartDiscovery. INVALID_ARGUMENT for a bad URL.
  static absl::StatusOr<std::unique_ptr<RegistryConnection>> Open(RegistryOptions options);
  // Revokes the registration (the record goes at once), then stops
  // discovery, the timers and the etcd client.
  ~RegistryConnection();
  RegistryConnection(const RegistryConnection&) = delete;
  RegistryConnection& operator=(const RegistryConnection&) = delete;

  // Registers `record` under a lease and keeps it alive; once. The error
  // (etcd unreachable) names the endpoints and the key. With a `guard`,
  // every write of the record is made under it (RegistrarOptions::guard).
  absl::Status Register(NodeRecord record, std::vector<TxnCompare> guard = {},
                        std::function<void(const absl::Status&)> on_fenced = nullptr);
  // Starts the discovery view (once; later calls return the same view).
  absl::StatusOr<Discovery*> StartDiscovery();
  // Marks the record draining: clients send no new Begins here, while
  // calls on this node's txids still find it. For the start of a shutdown.
  void Drain();
  // Removes the registration now; idempotent.
  void Deregister();

  Etcd* etcd() { return etcd_.get(); }
  Scheduler* scheduler() { return &timers_; }
  const RegistryOptions& options() const { return options_; }
  Registrar* registrar() { return registrar_.get(); }  // nullptr before Register
  Discovery* discovery() { return discovery_.get(); }  // nullptr before StartDiscovery
  // The registrar's and discovery's metrics (those started by now).
  void AddMetrics(MetricsRegistry* registry);

 private:
  RegistryConnection(RegistryOptions options, std::unique_ptr<Etcd> etcd)
      : options_(std::move(options)), etcd_(std::move(etcd)) {}

  const RegistryOptions options_;
  const std::unique_ptr<Etcd> etcd_;
  TimerQueue timers_;
  std::unique_ptr<Discovery> discovery_;
  std::unique_ptr<Registrar> registrar_;
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_REGISTRY_CONNECTION_H_
