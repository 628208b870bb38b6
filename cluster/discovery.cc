#include "cluster/discovery.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::cluster {

Discovery::Discovery(Etcd* etcd, Scheduler* scheduler, DiscoveryOptions options)
    : etcd_(etcd),
      options_(std::move(options)),
      prefix_(NodesPrefix(options_.prefix)),
      scope_(scheduler),
      backoff_(options_.min_backoff) {}

Discovery::~Discovery() {
  scope_.Close();  // no Resync after this
  std::unique_ptr<WatchHandle> watch;
  {
    absl::MutexLock lock(&mu_);
    watch = std::move(watch_);
  }
  watch.reset();  // no watch callback after this
}

absl::Status Discovery::Start() {
  absl::Status status = ReadAndWatch();
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("cannot read the registry under ", prefix_,
                                                    ": ", status.message()));
  }
  return status;
}

bool Discovery::Parse(const KeyValue& kv, NodeRecord* record) {
  absl::StatusOr<NodeRecord> parsed = ParseNodeRecord(kv.value);
  if (!parsed.ok()) {
    if (bad_keys_.insert(kv.key).second) {
      TXLOG(WARNING) << "registry: ignoring " << kv.key << ": " << parsed.status();
    }
    return false;
  }
  *record = *std::move(parsed);
  return true;
}

absl::Status Discovery::ReadAndWatch() {
  std::unique_ptr<WatchHandle> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::move(watch_);
  }
  old.reset();
  absl::StatusOr<RangeResult> read = etcd_->GetPrefix(prefix_);
  if (!read.ok()) return read.status();
  {
    absl::MutexLock lock(&mu_);
    view_.clear();
    for (const KeyValue& kv : read->kvs) {
      NodeRecord record;
      if (Parse(kv, &record)) view_[kv.key] = std::move(record);
    }
    revision_ = read->revision;
  }
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = etcd_->WatchPrefix(
      prefix_, read->revision + 1,
      [this](const std::vector<WatchEvent>& events, int64_t revision) {
        OnEvents(events, revision);
      },
      [this](const absl::Status& status) { OnError(status); });
  if (!watch.ok()) return watch.status();
  {
    absl::MutexLock lock(&mu_);
    watch_ = *std::move(watch);
    watching_ = true;
    backoff_ = options_.min_backoff;
  }
  Changed();
  return absl::OkStatus();
}

void Discovery::OnEvents(const std::vector<WatchEvent>& events, int64_t revision) {
  {
    absl::MutexLock lock(&mu_);
    for (const WatchEvent& event : events) {
      NodeRecord record;
      if (event.type == WatchEvent::Type::kPut && Parse(event.kv, &record)) {
        view_[event.kv.key] = std::move(record);
      } else {
        view_.erase(event.kv.key);
      }
    }
    revision_ = std::max(revision_, revision);
  }
  Changed();
}

void Discovery::OnError(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  watching_ = false;
  TXLOG(WARNING) << "registry: watch of " << prefix_ << " ended: " << status
                 << "; using the view at revision " << revision_ << " (" << view_.size()
                 << " nodes) until it is read again";
  const absl::Duration pause = backoff_ * std::uniform_real_distribution<double>(0.5, 1.0)(jitter_);
  scope_.After(pause, [this] { Resync(); });
}

void Discovery::Resync() {
  resyncs_.fetch_add(1, std::memory_order_relaxed);
  absl::Status status = ReadAndWatch();
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    TXLOG(INFO) << "registry: watching " << prefix_ << " again from revision " << revision_ << " ("
                << view_.size() << " nodes)";
    return;
  }
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  const absl::Duration pause = backoff_ * std::uniform_real_distribution<double>(0.5, 1.0)(jitter_);
  TXLOG(DEBUG) << "registry: reading " << prefix_ << " failed: " << status << "; again in "
               << absl::FormatDuration(pause);
  scope_.After(pause, [this] { Resync(); });
}

void Discovery::Changed() {
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    callbacks = on_change_;
  }
  for (const auto& fn : callbacks) fn();
}

std::string Discovery::Where(const std::string& prefix) {
  return absl::StrCat(prefix, " in ", etcd_->Describe(), " (view at revision ", revision_,
                      watching_ ? ", watching)" : ", not watching: etcd unreachable)");
}

absl::StatusOr<std::vector<NodeRecord>> Discovery::Coordinators(const std::string& service) {
  absl::MutexLock lock(&mu_);
  const std::string prefix = absl::StrCat(prefix_, kCoordinatorRole, "/", service, "/");
  std::vector<NodeRecord> found;
  for (auto it = view_.lower_bound(prefix);
       it != view_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (!it->second.draining) found.push_back(it->second);
  }
  if (found.empty()) {
    return absl::UnavailableError(absl::StrCat("no coordinator of service \"", service,
                                               "\" registered under ", Where(prefix)));
  }
  return found;
}

absl::StatusOr<NodeRecord> Discovery::Coordinator(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  const std::string prefix = absl::StrCat(prefix_, kCoordinatorRole, "/");
  for (auto it = view_.lower_bound(prefix);
       it != view_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (it->second.node_id == node_id) return it->second;
  }
  return absl::NotFoundError(
      absl::StrCat("coordinator \"", node_id, "\" is not registered under ", Where(prefix)));
}

absl::StatusOr<std::vector<NodeRecord>> Discovery::Agents(const std::string& service) {
  absl::MutexLock lock(&mu_);
  const std::string prefix = absl::StrCat(prefix_, kAgentRole, "/", service, "/");
  std::vector<NodeRecord> found;
  for (auto it = view_.lower_bound(prefix);
       it != view_.end() && absl::StartsWith(it->first, prefix); ++it) {
    found.push_back(it->second);
  }
  if (found.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no agent of service \"", service, "\" registered under ", Where(prefix)));
  }
  return found;
}

std::vector<NodeRecord> Discovery::All() {
  absl::MutexLock lock(&mu_);
  std::vector<NodeRecord> all;
  for (const auto& [key, record] : view_) all.push_back(record);
  return all;
}

void Discovery::OnChange(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  on_change_.push_back(std::move(fn));
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
  registry->AddGauge("txcoord_discovery_nodes", "Nodes in this process's view of the registry.",
                     [this] { return static_cast<double>(All().size()); });
  registry->AddGauge("txcoord_discovery_watching",
                     "1 while the registry view is kept current by a watch; 0 while etcd is "
                     "unreachable and the last view is used.",
                     [this] { return watching() ? 1.0 : 0.0; });
  registry->AddCounterFunction(
      "txcoord_discovery_resyncs_total",
      "Re-reads of the registry after a lost watch (etcd unreachable, history compacted).",
      [this] { return static_cast<double>(resyncs_.load()); });
}

}  // namespace txcoord::cluster
