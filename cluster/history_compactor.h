// Keeps etcd's history short (docs/ha.md "A bounded store"): every
// `interval` it reads the store's revision and compacts to the one it read
// the time before, so that etcd keeps between one and two intervals of
// history. The decision log on etcd rewrites and deletes keys all the time;
// without compaction its history would grow until etcd's space quota
// stops every write. Two processes compacting is harmless: a revision
// compacted already is skipped. Runs on a Scheduler (a thread of its own in
// a daemon: the etcd calls block).
#ifndef TXCOORD_CLUSTER_HISTORY_COMPACTOR_H_
#define TXCOORD_CLUSTER_HISTORY_COMPACTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "common/scheduled_scope.h"
#include "common/scheduler.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::cluster {

// Thread-safe.
class HistoryCompactor final {
 public:
  // `etcd` and `scheduler` must outlive it. The first compaction comes two
  // intervals after the start.
  HistoryCompactor(Etcd* etcd, Scheduler* scheduler, absl::Duration interval);
  ~HistoryCompactor();  // stops the loop

  // txcoord_etcd_compactions_total, txcoord_etcd_compacted_revision,
  // txcoord_etcd_compaction_failures_total.
  void AddMetrics(MetricsRegistry* registry);
  int64_t compacted_revision() const { return stats_->compacted.load(); }

 private:
  struct Stats {
    std::atomic<uint64_t> compactions{0};
    std::atomic<uint64_t> failures{0};
    std::atomic<int64_t> compacted{0};
  };
  void Tick();

  Etcd* const etcd_;
  const absl::Duration interval_;
  const std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();
  int64_t previous_ = 0;  // the revision read one interval ago (loop only)
  ScheduledScope scope_;  // last: closed first
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_HISTORY_COMPACTOR_H_
