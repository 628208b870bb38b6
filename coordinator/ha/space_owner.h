// Ownership of a txid space on etcd (docs/ha.md). A space is the first part
// of a txid (the coordinator's --cluster_id); exactly one coordinator
// process at a time owns it, through an owner key under that process's
// lease. Taking the space also advances its epoch, so that the new owner's
// txids never repeat an old owner's. Every write the owner makes for the
// space (decision log, registry record) is guarded by the owner key's
// create revision, the fence: once the lease has lapsed and another process
// took the space, etcd refuses them.
//
//   <prefix>/spaces/<space>/owner   who owns it (under the owner's lease)
//   <prefix>/spaces/<space>/epoch   the epoch of the latest owner (decimal)
//   <prefix>/spaces/<space>/log/    the decision log (etcd_decision_log.h)
#ifndef TXCOORD_COORDINATOR_HA_SPACE_OWNER_H_
#define TXCOORD_COORDINATOR_HA_SPACE_OWNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "common/scheduled_scope.h"
#include "common/scheduler.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::coordinator::ha {

struct SpaceKeys {
  std::string owner;
  std::string epoch;
  std::string log;  // a prefix, ending in '/'
  static SpaceKeys For(const std::string& prefix, const std::string& space);
};

// What the owner of a space holds.
struct Ownership {
  int64_t lease = 0;
  int64_t fence = 0;   // the owner key's create revision
  uint64_t epoch = 0;  // of this owner's txids, above every earlier owner's
  std::string owner_key;
  // The comparison every write for the space is guarded by.
  std::vector<cluster::TxnCompare> Guard() const;
};

// One attempt to take the space under `lease` (granted by the caller): the
// ownership, or nullopt while another holds it (then *holder is the owner
// key's value, or empty if the space changed hands during the attempt).
// Finding the space held under `lease` by `self` (an earlier attempt took
// it, but its answer was lost) returns that ownership.
absl::StatusOr<std::optional<Ownership>> TryTakeSpace(cluster::Etcd* etcd, const SpaceKeys& keys,
                                                      const std::string& self, int64_t lease,
                                                      std::string* holder);

struct CampaignOptions {
  SpaceKeys keys;
  std::string self;  // stored in the owner key: who this process is
  absl::Duration ttl = absl::Seconds(5);
  // While a standby: how often it also looks, besides the watch.
  absl::Duration poll = absl::Seconds(1);
};

// One round of a campaign: renews *lease (a new one of options.ttl when
// *lease is 0 or has expired; *lease is then set to it) and tries to take
// the space under it, as TryTakeSpace. Campaign is these rounds on a
// blocking loop; a driver on a Scheduler calls it from a timer instead.
absl::StatusOr<std::optional<Ownership>> CampaignRound(cluster::Etcd* etcd,
                                                       const CampaignOptions& options,
                                                       int64_t* lease, std::string* holder);

// Blocks until this process owns the space, keeping its own lease alive
// meanwhile and logging who holds the space each time that changes (a
// standby). CANCELLED once `should_stop` says so (checked at least every
// options.poll); UNAVAILABLE if etcd cannot be reached at the first try.
absl::StatusOr<Ownership> Campaign(cluster::Etcd* etcd, const CampaignOptions& options,
                                   const std::function<bool()>& should_stop);

struct KeeperOptions {
  absl::Duration ttl = absl::Seconds(5);  // renewed every ttl/3
  absl::Duration min_backoff = absl::Milliseconds(100);
};

// Keeps an ownership's lease alive on a Scheduler (give it one of its own in
// a daemon: its etcd calls block). When etcd says the lease is gone, it
// makes one write under the fence to learn from etcd itself whether the
// space is still this process's; if not (the usual case), `on_lost` runs
// once, from the loop, with FAILED_PRECONDITION naming the new holder. An
// unreachable etcd is retried with backoff and is not a loss: the fence
// keeps every write safe meanwhile. Thread-safe.
class OwnershipKeeper final {
 public:
  OwnershipKeeper(cluster::Etcd* etcd, Scheduler* scheduler, Ownership ownership,
                  KeeperOptions options, std::function<void(const absl::Status&)> on_lost);
  ~OwnershipKeeper();  // stops the loop (the lease is left to expire)

  // Revokes the lease: the space is free at once, for a standby to take
  // (clean shutdown). Stops the loop. One attempt; idempotent.
  void Release();

  const Ownership& ownership() const { return ownership_; }
  // txcoord_ha_owner (1 while held), txcoord_ha_keepalive_failures_total,
  // txcoord_ha_fenced_writes_total (also counted by the decision log).
  void AddMetrics(MetricsRegistry* registry);
  // Called by the decision log when etcd refused one of its writes.
  void CountFencedWrite() { stats_->fenced_writes.fetch_add(1); }

 private:
  struct Stats {
    std::atomic<bool> owner{true};
    std::atomic<uint64_t> keepalive_failures{0};
    std::atomic<uint64_t> fenced_writes{0};
  };
  void Tick();
  // The lease is gone: is the space still ours (a fenced write says)?
  absl::Status CheckFence();

  cluster::Etcd* const etcd_;
  const Ownership ownership_;
  const KeeperOptions options_;
  const std::function<void(const absl::Status&)> on_lost_;
  const std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration backoff_;  // only the loop touches it
  absl::Time renewed_at_;   // only the loop touches it
  bool warned_ = false;     // the outage was logged (loop only)
  ScheduledScope scope_;    // last: closed first
};

}  // namespace txcoord::coordinator::ha

#endif  // TXCOORD_COORDINATOR_HA_SPACE_OWNER_H_
