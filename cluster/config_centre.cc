#include "cluster/config_centre.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "cluster/cluster_flags.h"
#include "cluster/etcd_client.h"
#include "cluster/node_record.h"
#include "common/logging.h"

namespace txcoord::cluster {

absl::StatusOr<std::unique_ptr<ConfigCentre>> ConfigCentre::StartFromFlags(
    SettingRole role, const std::string& service, ConfigWatcher::ApplyFn apply,
    MetricsRegistry* metrics, const std::string& metric_prefix) {
  const std::string registry = absl::GetFlag(FLAGS_registry);
  if (registry.empty()) return nullptr;
  absl::StatusOr<std::vector<std::string>> endpoints = ParseRegistryUrl(registry);
  if (!endpoints.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--registry: ", endpoints.status().message()));
  }
  absl::StatusOr<std::map<std::string, SettingValue>> defaults = FlagDefaults(role);
  if (!defaults.ok()) return defaults.status();

  std::unique_ptr<ConfigCentre> centre(new ConfigCentre());
  centre->timers_ = std::make_unique<TimerQueue>();
  EtcdClientOptions client_options;
  client_options.endpoints = *std::move(endpoints);
  centre->etcd_ = std::make_unique<EtcdClient>(std::move(client_options));
  ConfigWatcherOptions options;
  options.prefix = absl::GetFlag(FLAGS_registry_prefix);
  options.service = service;
  options.role = role;
  options.defaults = *std::move(defaults);
  options.metrics = metrics;
  options.metric_prefix = metric_prefix;
  centre->watcher_ = std::make_unique<ConfigWatcher>(centre->etcd_.get(), centre->timers_.get(),
                                                     std::move(options), std::move(apply));
  if (absl::Status started = centre->watcher_->Start(); !started.ok()) {
    return absl::Status(started.code(), absl::StrCat("reading the config of ", service,
                                                     " from etcd: ", started.message()));
  }
  TXLOG(INFO) << "config: watching " << ConfigPrefix(absl::GetFlag(FLAGS_registry_prefix), service)
              << " at " << centre->etcd_->Describe() << " from revision "
              << centre->watcher_->stats().revision;
  return centre;
}

}  // namespace txcoord::cluster
