// Keeps a running daemon's policy in step with etcd (docs/cluster.md,
// "Config centre"): reads <prefix>/config/<service>/ once, applies every
// valid setting, then watches the prefix and applies each change as it
// comes, logging it old -> new. A value that fails validation (or a name
// the schema does not know) is logged, counted and ignored: the last valid
// value stays in force. A deleted key brings the setting back to its
// default (the daemon's flag). If the watch ends, the watcher re-reads and
// watches again after a backoff on its Scheduler, keeping the values in
// force meanwhile.
//
//   ConfigWatcher watcher(etcd, timers, options,
//                         [&](const std::string& name, const SettingValue& v) { ... });
//   if (absl::Status s = watcher.Start(); !s.ok()) return s;  // etcd unreachable
#ifndef TXCOORD_CLUSTER_CONFIG_WATCHER_H_
#define TXCOORD_CLUSTER_CONFIG_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "cluster/settings.h"
#include "common/metrics.h"
#include "common/scheduler.h"

namespace txcoord::cluster {

struct ConfigWatcherOptions {
  std::string prefix;  // --registry_prefix
  std::string service;
  SettingRole role = SettingRole::kAgent;
  // The value of each of `role`'s settings while etcd sets none (FlagDefaults).
  std::map<std::string, SettingValue> defaults;
  // Waits between re-reads after the watch ended: the first, then doubling.
  absl::Duration resync_backoff = absl::Milliseconds(500);
  absl::Duration max_resync_backoff = absl::Seconds(30);
  // Where the counters and the gauge go, named "<metric_prefix>_config_*";
  // may be null.
  MetricsRegistry* metrics = nullptr;
  std::string metric_prefix = "txcoord";
};

// Thread-safe. `etcd` and `scheduler` must outlive the watcher.
class ConfigWatcher final {
 public:
  // Called with each setting whose value in force changes (never for one
  // that stays the same), one call at a time, in etcd's order, under the
  // watcher's lock: keep it short and never call the watcher from it.
  using ApplyFn = std::function<void(const std::string& name, const SettingValue& value)>;

  ConfigWatcher(Etcd* etcd, Scheduler* scheduler, ConfigWatcherOptions options, ApplyFn apply);
  // Stops watching and waits for a re-read in progress: `apply` is never
  // called once the destructor has returned.
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Reads the service's settings, applies them (on the calling thread),
  // and starts watching. The read's error (UNAVAILABLE naming etcd's
  // endpoints), nothing applied then; or the watch's, with the settings
  // read applied. Call once.
  absl::Status Start();

  // The value in force of each of the role's settings.
  std::map<std::string, SettingValue> Current() const;

  struct Stats {
    uint64_t applied = 0;   // changes handed to `apply` (after Start's read too)
    uint64_t rejected = 0;  // invalid values and unknown names ignored
    bool watching = false;  // a watch is open
    int64_t revision = 0;   // etcd's revision the settings are current to
  };
  Stats stats() const;

 private:
  struct Gate;
  // A key's state as read or watched: its text, or nullopt once deleted.
  struct Change {
    std::string key;
    std::optional<std::string> text;
    int64_t revision = 0;  // the write (or delete) that made it so
  };

  // Reads the prefix and applies what differs from what was seen, then
  // opens a watch from the read's revision. Error: nothing changed.
  absl::Status Resync() ABSL_LOCKS_EXCLUDED(mu_);
  void ApplyLocked(const Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnEvents(uint64_t generation, const std::vector<WatchEvent>& events, int64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnWatchError(uint64_t generation, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleResyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunScheduledResync() ABSL_LOCKS_EXCLUDED(mu_);
  // The setting's name, or the whole key if it is not under the prefix.
  std::string NameOf(const std::string& key) const;

  Etcd* const etcd_;
  Scheduler* const scheduler_;
  const ConfigWatcherOptions options_;
  const std::string key_prefix_;  // <prefix>/config/<service>/
  const ApplyFn apply_;
  const std::shared_ptr<Gate> gate_;  // held by the re-read's timer too
  // True while a watch is open; shared with the gauge, so that a registry
  // outliving the watcher is safe. Written under mu_.
  const std::shared_ptr<std::atomic<bool>> watching_;
  MetricsRegistry own_metrics_;  // when options.metrics is null
  Counter* applied_;
  Counter* rejected_;

  mutable absl::Mutex mu_;
  std::map<std::string, SettingValue> current_ ABSL_GUARDED_BY(mu_);
  // Per key seen in etcd (known or not): the revision of its last write
  // handled, so that a re-read neither applies nor rejects it twice.
  std::map<std::string, int64_t> seen_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by every new watch: callbacks of an older one are ignored.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<WatchHandle> watch_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Scheduler::TimerId resync_timer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration next_backoff_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_CONFIG_WATCHER_H_
