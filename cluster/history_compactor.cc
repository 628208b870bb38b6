#include "cluster/history_compactor.h"

#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::cluster {

HistoryCompactor::HistoryCompactor(Etcd* etcd, Scheduler* scheduler, absl::Duration interval)
    : etcd_(etcd), interval_(interval), scope_(scheduler) {
  scope_.After(interval_, [this] { Tick(); });
}

HistoryCompactor::~HistoryCompactor() { scope_.Close(); }

void HistoryCompactor::Tick() {
  // Any read answers with the store's revision; this key need not exist.
  absl::StatusOr<RangeResult> read = etcd_->Get("/");
  if (!read.ok()) {
    stats_->failures.fetch_add(1);
    TXLOG(WARNING) << "etcd compaction: reading the revision of " << etcd_->Describe()
                   << " failed: " << read.status() << "; trying again in "
                   << absl::FormatDuration(interval_);
    scope_.After(interval_, [this] { Tick(); });
    return;
  }
  if (previous_ > 0) {
    const absl::Status compacted = etcd_->Compact(previous_);
    if (compacted.ok()) {
      stats_->compactions.fetch_add(1);
      stats_->compacted.store(previous_);
      TXLOG(DEBUG) << "etcd compaction: history before revision " << previous_ << " discarded";
    } else if (absl::IsOutOfRange(compacted)) {
      // Compacted further already (another process, or etcd's own
      // auto-compaction): nothing to do.
    } else {
      stats_->failures.fetch_add(1);
      TXLOG(WARNING) << "etcd compaction to revision " << previous_ << " failed: " << compacted;
    }
  }
  previous_ = read->revision;
  scope_.After(interval_, [this] { Tick(); });
}

void HistoryCompactor::AddMetrics(MetricsRegistry* registry) {
  registry->AddCounterFunction(
      "txcoord_etcd_compactions_total",
      "Compactions of etcd's history this process made (--etcd_compaction_interval).",
      [stats = stats_] { return static_cast<double>(stats->compactions.load()); });
  registry->AddGauge("txcoord_etcd_compacted_revision",
                     "The revision before which this process last discarded etcd's history.",
                     [stats = stats_] { return static_cast<double>(stats->compacted.load()); });
  registry->AddCounterFunction(
      "txcoord_etcd_compaction_failures_total",
      "Compactions of etcd's history that failed (etcd unreachable); retried next interval.",
      [stats = stats_] { return static_cast<double>(stats->failures.load()); });
}

}  // namespace txcoord::cluster
