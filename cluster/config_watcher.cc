#include "cluster/config_watcher.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cluster/node_record.h"
#include "common/check.h"
#include "common/logging.h"

namespace txcoord::cluster {

// Lets a timer callback outlive the watcher: it runs the re-read only while
// the watcher is there, and the destructor waits for one that runs.
struct ConfigWatcher::Gate {
  absl::Mutex mu;
  absl::CondVar idle;
  ConfigWatcher* watcher ABSL_GUARDED_BY(mu) = nullptr;
  int running ABSL_GUARDED_BY(mu) = 0;
};

ConfigWatcher::ConfigWatcher(Etcd* etcd, Scheduler* scheduler, ConfigWatcherOptions options,
                             ApplyFn apply)
    : etcd_(etcd),
      scheduler_(scheduler),
      options_(std::move(options)),
      key_prefix_(ConfigPrefix(options_.prefix, options_.service)),
      apply_(std::move(apply)),
      gate_(std::make_shared<Gate>()),
      watching_(std::make_shared<std::atomic<bool>>(false)) {
  for (const std::string& name : SettingNames(options_.role)) {
    TXCOORD_CHECK(options_.defaults.count(name) == 1) << "no default for setting " << name;
  }
  {
    absl::MutexLock lock(&gate_->mu);
    gate_->watcher = this;
  }
  MetricsRegistry* registry = options_.metrics != nullptr ? options_.metrics : &own_metrics_;
  const std::string& p = options_.metric_prefix;
  applied_ = registry->AddCounter(p + "_config_applied_total",
                                  "Setting changes from etcd (config centre) applied.");
  rejected_ = registry->AddCounter(
      p + "_config_rejected_total",
      "Values or names in etcd's config for this service that failed validation and were "
      "ignored (the last valid value stays).");
  registry->AddGauge(p + "_config_watching",
                     "1 while the config centre's watch on etcd is open; 0 while re-reading.",
                     [gauge = watching_] { return gauge->load() ? 1.0 : 0.0; });
  absl::MutexLock lock(&mu_);
  current_ = options_.defaults;
  next_backoff_ = options_.resync_backoff;
}

ConfigWatcher::~ConfigWatcher() {
  std::unique_ptr<WatchHandle> watch;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (resync_timer_ != 0) scheduler_->Cancel(resync_timer_);
  }
  {
    // A re-read that already started sees stopping_ and ends soon.
    absl::MutexLock lock(&gate_->mu);
    gate_->watcher = nullptr;
    while (gate_->running > 0) gate_->idle.Wait(&gate_->mu);
  }
  {
    absl::MutexLock lock(&mu_);
    watch = std::move(watch_);
  }
  // Outside mu_: the handle waits for a callback that may be waiting for it.
  watch.reset();
  watching_->store(false);
}

absl::Status ConfigWatcher::Start() { return Resync(); }

std::map<std::string, SettingValue> ConfigWatcher::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

ConfigWatcher::Stats ConfigWatcher::stats() const {
  absl::MutexLock lock(&mu_);
  return Stats{applied_->value(), rejected_->value(), watching_->load(), revision_};
}

std::string ConfigWatcher::NameOf(const std::string& key) const {
  return absl::StartsWith(key, key_prefix_) ? key.substr(key_prefix_.size()) : key;
}

absl::Status ConfigWatcher::Resync() {
  absl::StatusOr<RangeResult> read = etcd_->GetPrefix(key_prefix_);
  if (!read.ok()) return read.status();
  uint64_t generation = 0;
  std::unique_ptr<WatchHandle> old_watch;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("config watcher stopping");
    std::map<std::string, const KeyValue*> present;
    for (const KeyValue& kv : read->kvs) present.emplace(kv.key, &kv);
    // Deleted while no watch was open.
    std::vector<std::string> gone;
    for (const auto& [key, revision] : seen_) {
      if (present.count(key) == 0) gone.push_back(key);
    }
    for (const std::string& key : gone) ApplyLocked({key, std::nullopt, read->revision});
    for (const KeyValue& kv : read->kvs) {
      auto seen = seen_.find(kv.key);
      if (seen != seen_.end() && seen->second == kv.mod_revision) continue;
      ApplyLocked({kv.key, kv.value, kv.mod_revision});
    }
    revision_ = std::max(revision_, read->revision);
    generation = ++generation_;
    old_watch = std::move(watch_);
    watching_->store(false);
  }
  old_watch.reset();
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = etcd_->WatchPrefix(
      key_prefix_, read->revision + 1,
      [this, generation](const std::vector<WatchEvent>& events, int64_t revision) {
        OnEvents(generation, events, revision);
      },
      [this, generation](const absl::Status& status) { OnWatchError(generation, status); });
  if (!watch.ok()) return watch.status();
  std::unique_ptr<WatchHandle> unused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || generation != generation_) {
      unused = *std::move(watch);
    } else {
      watch_ = *std::move(watch);
      watching_->store(true);
    }
  }
  return absl::OkStatus();
}

void ConfigWatcher::ApplyLocked(const Change& change) {
  const std::string name = NameOf(change.key);
  const std::string& service = options_.service;
  auto current = current_.find(name);
  if (!change.text.has_value()) {
    seen_.erase(change.key);
    if (current == current_.end()) return;  // an unknown name went away
    const SettingValue& flag_default = options_.defaults.at(name);
    if (current->second == flag_default) return;
    TXLOG(INFO) << "config: " << service << " " << name << " " << current->second.ToString()
                << " -> " << flag_default.ToString()
                << " (deleted: back to the flag's default; etcd revision " << change.revision
                << ")";
    current->second = flag_default;
    applied_->Increment();
    apply_(name, current->second);
    return;
  }
  seen_[change.key] = change.revision;
  absl::StatusOr<SettingValue> value = ValidateSetting(options_.role, name, *change.text);
  if (!value.ok()) {
    rejected_->Increment();
    TXLOG(WARNING) << "config: " << service << " " << name << ": ignoring \"" << *change.text
                   << "\" (etcd revision " << change.revision << "): " << value.status().message()
                   << (current == current_.end()
                           ? ""
                           : absl::StrCat("; keeping ", current->second.ToString()));
    return;
  }
  TXCOORD_CHECK(current != current_.end()) << "valid setting " << name << " has no value";
  if (current->second == *value) return;
  TXLOG(INFO) << "config: " << service << " " << name << " " << current->second.ToString() << " -> "
              << value->ToString() << " (etcd revision " << change.revision << ")";
  current->second = *value;
  applied_->Increment();
  apply_(name, current->second);
}

void ConfigWatcher::OnEvents(uint64_t generation, const std::vector<WatchEvent>& events,
                             int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || generation != generation_) return;
  for (const WatchEvent& event : events) {
    std::optional<std::string> text;
    if (event.type == WatchEvent::Type::kPut) text = event.kv.value;
    ApplyLocked({event.kv.key, std::move(text), event.kv.mod_revision});
  }
  revision_ = std::max(revision_, revision);
  next_backoff_ = options_.resync_backoff;  // the watch works: a later failure starts afresh
}

void ConfigWatcher::OnWatchError(uint64_t generation, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || generation != generation_) return;
  watching_->store(false);
  TXLOG(WARNING) << "config: watch of " << key_prefix_ << " at " << etcd_->Describe()
                 << " ended: " << status << "; keeping the values in force";
  ScheduleResyncLocked();
}

void ConfigWatcher::ScheduleResyncLocked() {
  if (resync_timer_ != 0) return;
  const absl::Duration delay = next_backoff_;
  next_backoff_ = std::min(next_backoff_ * 2, options_.max_resync_backoff);
  TXLOG(INFO) << "config: re-reading " << key_prefix_ << " in " << absl::FormatDuration(delay);
  resync_timer_ = scheduler_->After(delay, [gate = gate_] {
    ConfigWatcher* watcher;
    {
      absl::MutexLock lock(&gate->mu);
      if (gate->watcher == nullptr) return;
      watcher = gate->watcher;
      ++gate->running;
    }
    watcher->RunScheduledResync();
    absl::MutexLock lock(&gate->mu);
    if (--gate->running == 0) gate->idle.SignalAll();
  });
}

void ConfigWatcher::RunScheduledResync() {
  {
    absl::MutexLock lock(&mu_);
    resync_timer_ = 0;
    if (stopping_) return;
  }
  const absl::Status status = Resync();
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  if (!status.ok()) {
    TXLOG(WARNING) << "config: re-reading " << key_prefix_ << " failed: " << status
                   << "; keeping the values in force";
    ScheduleResyncLocked();
    return;
  }
  TXLOG(INFO) << "config: watching " << key_prefix_ << " again from etcd revision " << revision_;
}

}  // namespace txcoord::cluster
