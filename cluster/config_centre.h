// A daemon's config centre (docs/cluster.md, "Config centre"): with
// --registry, an etcd client and a ConfigWatcher for the daemon's service,
// its re-reads on a timer thread of its own. The daemons' main() makes one
// and keeps it until shutdown.
//
//   absl::StatusOr<std::unique_ptr<ConfigCentre>> config = ConfigCentre::StartFromFlags(
//       SettingRole::kAgent, name, apply, &metrics, "txagent");
//   if (!config.ok()) ...;  // etcd could not be read: refuse to start
#ifndef TXCOORD_CLUSTER_CONFIG_CENTRE_H_
#define TXCOORD_CLUSTER_CONFIG_CENTRE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cluster/config_watcher.h"
#include "cluster/etcd.h"
#include "cluster/settings.h"
#include "common/metrics.h"
#include "common/timer_queue.h"

namespace txcoord::cluster {

class ConfigCentre final {
 public:
  // Null (and OK) without --registry. Otherwise connects to its etcd (under
  // --registry_prefix), applies `service`'s settings through `apply` on
  // this thread, and watches them; the defaults are the process's flags of
  // `role`'s settings (FlagDefaults). INVALID_ARGUMENT for a bad --registry;
  // the initial read's error (UNAVAILABLE naming etcd's endpoints).
  // `metrics` (may be null) must outlive the result.
  static absl::StatusOr<std::unique_ptr<ConfigCentre>> StartFromFlags(
      SettingRole role, const std::string& service, ConfigWatcher::ApplyFn apply,
      MetricsRegistry* metrics, const std::string& metric_prefix);

  // Stops watching: no `apply` call once it returns.
  ~ConfigCentre() = default;
  ConfigCentre(const ConfigCentre&) = delete;
  ConfigCentre& operator=(const ConfigCentre&) = delete;

  ConfigWatcher* watcher() const { return watcher_.get(); }

 private:
  ConfigCentre() = default;

  // Destroyed in reverse order: the watcher first, then the client, then
  // the timer thread its re-reads ran on.
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<Etcd> etcd_;
  std::unique_ptr<ConfigWatcher> watcher_;
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_CONFIG_CENTRE_H_
