#include "cluster/discovery.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::cluster {
namespace {

// The record at `kv`, checked against the key it was found under: lookups
// by service and node id go by the key.
absl::StatusOr<NodeRecord> ParseAt(const std::string& prefix, const KeyValue& kv) {
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(kv.value);
  if (!record.ok()) return record;
  const std::string expected = NodeKey(prefix, record->role, record->service, record->node_id);
  if (expected != kv.key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node record: its role, service and node_id belong under ", expected, ", not here"));
  }
  return record;
}

}  // namespace

Discovery::Discovery(Etcd* etcd, Scheduler* scheduler, DiscoveryOptions options)
    : etcd_(etcd),
      scheduler_(scheduler),
      options_(std::move(options)),
      nodes_prefix_(NodesPrefix(options_.prefix)),
      // Never zero: a retry loop with no wait would spin against etcd.
      min_backoff_(std::max(options_.min_backoff, absl::Milliseconds(1))),
      max_backoff_(std::max(options_.max_backoff, min_backoff_)) {
  absl::MutexLock lock(&mu_);
  backoff_ = min_backoff_;
  // Clients of one etcd lose their watches together: unlike seeds spread
  // their re-reads.
  jitter_.seed(std::random_device{}());
}

Discovery::~Discovery() {
  // Waits for a re-read that is running; none starts after this.
  gate_->Close();
  std::unique_ptr<WatchHandle> watch;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (resync_timer_ != 0) scheduler_->Cancel(resync_timer_);
    resync_timer_ = 0;
    watch = std::move(watch_);
    watching_ = false;
    stats_->watching.store(false);
  }
  // Outside mu_: the handle waits for a running callback, which takes mu_.
  watch.reset();
}

absl::Status Discovery::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("discovery already started");
  }
  if (absl::Status status = Resync(); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  started_ = true;
  TXLOG(INFO) << "discovery: " << view_.size() << " node(s) under " << nodes_prefix_ << " in "
              << etcd_->Describe() << " at revision " << revision_ << ", watching";
  return absl::OkStatus();
}

absl::Status Discovery::Resync() {
  absl::StatusOr<RangeResult> read = etcd_->GetPrefix(nodes_prefix_);
  if (!read.ok()) {
    return absl::Status(read.status().code(),
                        absl::StrCat("cannot read the registry under ", nodes_prefix_, " in ",
                                     etcd_->Describe(), ": ", read.status().message()));
  }
  uint64_t generation = 0;
  std::unique_ptr<WatchHandle> old_watch;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("discovery stopping");
    // Wholesale: nodes that went while no watch was open go here too.
    std::set<std::string> old_bad;
    old_bad.swap(bad_);
    view_.clear();
    for (const KeyValue& kv : read->kvs) {
      absl::StatusOr<NodeRecord> record = ParseAt(options_.prefix, kv);
      if (record.ok()) {
        view_.emplace(kv.key, *std::move(record));
        continue;
      }
      if (old_bad.count(kv.key) == 0) {
        TXLOG(WARNING) << "discovery: skipping " << kv.key << " (etcd revision " << kv.mod_revision
                       << "): " << record.status().message();
      }
      bad_.insert(kv.key);
    }
    revision_ = read->revision;
    stats_->nodes.store(static_cast<int64_t>(view_.size()));
    generation = ++generation_;
    old_watch = std::move(watch_);
    watching_ = false;
    stats_->watching.store(false);
  }
  // Never inside the old watch's own callback: this runs on the caller's
  // thread or in a scheduler callback.
  old_watch.reset();
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = etcd_->WatchPrefix(
      nodes_prefix_, read->revision + 1,
      [this, generation](const std::vector<WatchEvent>& events, int64_t revision) {
        OnEvents(generation, events, revision);
      },
      [this, generation](const absl::Status& status) { OnWatchError(generation, status); });
  if (!watch.ok()) {
    return absl::Status(
        watch.status().code(),
        absl::StrCat("cannot watch ", nodes_prefix_, " in ", etcd_->Describe(), " from revision ",
                     read->revision + 1, ": ", watch.status().message()));
  }
  std::unique_ptr<WatchHandle> unused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || generation != generation_) {
      unused = *std::move(watch);
    } else {
      watch_ = *std::move(watch);
      watching_ = true;
      stats_->watching.store(true);
    }
  }
  return absl::OkStatus();
}

void Discovery::ApplyPutLocked(const KeyValue& kv) {
  absl::StatusOr<NodeRecord> record = ParseAt(options_.prefix, kv);
  if (record.ok()) {
    bad_.erase(kv.key);
    view_[kv.key] = *std::move(record);
    return;
  }
  // A record that turned bad is no longer usable.
  view_.erase(kv.key);
  if (bad_.insert(kv.key).second) {
    TXLOG(WARNING) << "discovery: skipping " << kv.key << " (etcd revision " << kv.mod_revision
                   << "): " << record.status().message();
  }
}

void Discovery::OnEvents(uint64_t generation, const std::vector<WatchEvent>& events,
                         int64_t revision) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || generation != generation_) return;
    for (const WatchEvent& event : events) {
      if (event.type == WatchEvent::Type::kPut) {
        ApplyPutLocked(event.kv);
      } else {
        view_.erase(event.kv.key);
        bad_.erase(event.kv.key);
      }
    }
    revision_ = std::max(revision_, revision);
    stats_->nodes.store(static_cast<int64_t>(view_.size()));
  }
  Notify();
}

void Discovery::OnWatchError(uint64_t generation, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || generation != generation_) return;
  watching_ = false;
  stats_->watching.store(false);
  TXLOG(WARNING) << "discovery: watch of " << nodes_prefix_ << " in " << etcd_->Describe()
                 << " ended at revision " << revision_ << ": " << status
                 << "; using the last view (" << view_.size() << " node(s)) until it is read again";
  outage_logged_ = false;
  ScheduleResyncLocked();
}

void Discovery::ScheduleResyncLocked() {
  if (resync_timer_ != 0 || stopping_) return;
  // Jittered into [backoff/2, backoff], then the backoff doubles.
  const int64_t half = absl::ToInt64Microseconds(backoff_) / 2;
  std::uniform_int_distribution<int64_t> spread(0, std::max<int64_t>(half, 0));
  const absl::Duration delay = absl::Microseconds(half + spread(jitter_));
  backoff_ = std::min(backoff_ * 2, max_backoff_);
  resync_timer_ = scheduler_->After(
      delay, [gate = gate_, this] { gate->Run([this] { RunScheduledResync(); }); });
}

void Discovery::RunScheduledResync() {
  {
    absl::MutexLock lock(&mu_);
    resync_timer_ = 0;
    if (stopping_) return;
  }
  const absl::Status status = Resync();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (!status.ok()) {
      if (!outage_logged_) {
        outage_logged_ = true;
        TXLOG(WARNING) << "discovery: " << status << "; retrying with backoff up to "
                       << absl::FormatDuration(max_backoff_);
      }
      ScheduleResyncLocked();
      return;
    }
    backoff_ = min_backoff_;
    stats_->resyncs.fetch_add(1);
    TXLOG(INFO) << "discovery: " << view_.size() << " node(s) under " << nodes_prefix_
                << ", watching again from etcd revision " << revision_ + 1;
  }
  Notify();
}

void Discovery::Notify() {
  absl::MutexLock notify(&notify_mu_);
  std::vector<std::shared_ptr<std::function<void()>>> fns;
  {
    absl::MutexLock lock(&mu_);
    fns = on_change_;
  }
  for (const auto& fn : fns) (*fn)();
}

void Discovery::OnChange(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  on_change_.push_back(std::make_shared<std::function<void()>>(std::move(fn)));
}

std::string Discovery::WhereLocked(const std::string& key_prefix) {
  const char* state = !started_   ? "not started"
                      : watching_ ? "watching"
                                  : "not watching: etcd unreachable, the view may be stale";
  return absl::StrCat("under ", key_prefix, " in ", etcd_->Describe(), " (view at revision ",
                      revision_, ", ", state, ")");
}

std::vector<NodeRecord> Discovery::UnderLocked(const std::string& key_prefix) {
  std::vector<NodeRecord> records;
  for (auto it = view_.lower_bound(key_prefix);
       it != view_.end() && absl::StartsWith(it->first, key_prefix); ++it) {
    records.push_back(it->second);
  }
  return records;
}

absl::StatusOr<std::vector<NodeRecord>> Discovery::Coordinators(const std::string& service) {
  const std::string key_prefix = NodeKey(options_.prefix, kCoordinatorRole, service, "");
  absl::MutexLock lock(&mu_);
  std::vector<NodeRecord> serving;
  std::vector<std::string> draining;
  for (NodeRecord& record : UnderLocked(key_prefix)) {
    if (record.draining) {
      draining.push_back(record.node_id);
    } else {
      serving.push_back(std::move(record));
    }
  }
  if (!serving.empty()) return serving;
  if (draining.empty()) {
    return absl::UnavailableError(absl::StrCat("no coordinator of service \"", service,
                                               "\" registered ", WhereLocked(key_prefix)));
  }
  return absl::UnavailableError(absl::StrCat("no serving coordinator of service \"", service,
                                             "\" (draining: ", absl::StrJoin(draining, ", "),
                                             ") registered ", WhereLocked(key_prefix)));
}

absl::StatusOr<NodeRecord> Discovery::Coordinator(const std::string& node_id) {
  const std::string key_prefix = absl::StrCat(nodes_prefix_, kCoordinatorRole, "/");
  absl::MutexLock lock(&mu_);
  for (auto it = view_.lower_bound(key_prefix);
       it != view_.end() && absl::StartsWith(it->first, key_prefix); ++it) {
    if (it->second.node_id == node_id) return it->second;
  }
  return absl::NotFoundError(
      absl::StrCat("coordinator \"", node_id, "\" is not registered ", WhereLocked(key_prefix)));
}

absl::StatusOr<std::vector<NodeRecord>> Discovery::Agents(const std::string& service) {
  const std::string key_prefix = NodeKey(options_.prefix, kAgentRole, service, "");
  absl::MutexLock lock(&mu_);
  std::vector<NodeRecord> agents = UnderLocked(key_prefix);
  if (!agents.empty()) return agents;
  return absl::UnavailableError(
      absl::StrCat("no agent of service \"", service, "\" registered ", WhereLocked(key_prefix)));
}

std::vector<NodeRecord> Discovery::All() {
  absl::MutexLock lock(&mu_);
  return UnderLocked(nodes_prefix_);
}

int64_t Discovery::revision() {
  absl::MutexLock lock(&mu_);
  return revision_;
}

bool Discovery::watching() {
  absl::MutexLock lock(&mu_);
  return watching_;
}

void Discovery::AddMetrics(MetricsRegistry* registry) {
  registry->AddGauge("txcoord_discovery_nodes", "Node records in this process's registry view.",
                     [stats = stats_] { return static_cast<double>(stats->nodes.load()); });
  registry->AddGauge(
      "txcoord_discovery_watching",
      "1 while the registry view follows etcd; 0 while etcd is unreachable and it may be stale.",
      [stats = stats_] { return stats->watching.load() ? 1.0 : 0.0; });
  registry->AddCounterFunction(
      "txcoord_discovery_resyncs_total",
      "Times the registry view was read again after its watch ended (etcd unreachable).",
      [stats = stats_] { return static_cast<double>(stats->resyncs.load()); });
}

}  // namespace txcoord::cluster
