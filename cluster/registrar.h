// Keeps this daemon's NodeRecord in etcd under a lease it renews: the loop
// of docs/cluster.md "Leases". Runs on a Scheduler (the daemon's
// TimerQueue, or the simulator's loop); its etcd calls are made from the
// scheduler's callbacks, so give it a scheduler of its own in a daemon.
#ifndef TXCOORD_CLUSTER_REGISTRAR_H_
#define TXCOORD_CLUSTER_REGISTRAR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/callback_gate.h"
#include "cluster/etcd.h"
#include "cluster/node_record.h"
#include "common/scheduler.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::cluster {

struct RegistrarOptions {
  std::string prefix = kDefaultPrefix;
  absl::Duration ttl = absl::Seconds(5);  // renewed every ttl/3
  // Retry after a failed etcd call: from this, doubling, to ttl/3, jittered.
  absl::Duration min_backoff = absl::Milliseconds(100);
  // Comparisons every write of the record is made under (an etcd
  // transaction): a coordinator that owns its txid space (docs/ha.md)
  // registers only while it still does. Once they fail, the record is
  // never written again, and `on_fenced` (may be empty) is called once,
  // from the loop, with the FAILED_PRECONDITION naming the key.
  std::vector<TxnCompare> guard;
  std::function<void(const absl::Status&)> on_fenced;
};

// Thread-safe.
class Registrar final {
 public:
  // `etcd` and `scheduler` must outlive this object.
  Registrar(Etcd* etcd, Scheduler* scheduler, NodeRecord record, RegistrarOptions options = {});
  ~Registrar();  // Stop()

  // Registers now (one attempt, its error returned: a daemon started with
  // --registry refuses to start when etcd cannot be reached, naming the
  // endpoints), then keeps the record alive in the background; a later
  // outage is retried with backoff and never stops the daemon.
  absl::Status Start();
  // Rewrites the record as draining: clients send it no new Begins.
  absl::Status SetDraining(bool draining);
  // Revokes the lease (the record disappears at once) and stops the loop.
  // Idempotent.
  void Stop();

  bool registered();  // the record is in etcd as far as this process knows
  int64_t lease();    // 0 when none
  std::string key() const { return key_; }
  // Counters and gauges: txcoord_registry_registered,
  // txcoord_registry_keepalive_failures_total, txcoord_registry_registrations_total.
  void AddMetrics(MetricsRegistry* registry);

 private:
  // Read by the metrics' callbacks, which may outlive the registrar.
  struct Stats {
    std::atomic<bool> registered{false};
    std::atomic<uint64_t> keepalive_failures{0};
    std::atomic<uint64_t> registrations{0};
  };

  // The loop's step: renews the lease, or registers again if it is gone or
  // the record needs writing; schedules the next step.
  void Tick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  // Renews, grants and puts as needed; the first error.
  absl::Status Step() ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  // Writes record_ under `lease`: a put, or a transaction under the guard
  // (FAILED_PRECONDITION when it failed).
  absl::Status Write(int64_t lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  // Puts record_ under `lease`; on NOT_FOUND forgets the lease.
  absl::Status PutRecord(int64_t lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  void ScheduleTick(absl::Duration delay) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  // The next retry delay: backoff_ jittered into [backoff_/2, backoff_],
  // then backoff_ doubles up to ttl/3.
  absl::Duration NextBackoff() ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);
  absl::Duration FirstBackoff() const;
  void SetLease(int64_t lease, bool registered) ABSL_LOCKS_EXCLUDED(mu_);

  Etcd* const etcd_;
  Scheduler* const scheduler_;
  const RegistrarOptions options_;
  const std::string key_;
  const absl::Duration renew_every_;  // ttl/3
  const std::shared_ptr<CallbackGate> gate_ = std::make_shared<CallbackGate>();
  const std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();

  // Held across etcd calls that change the lease or the record, so that the
  // loop, SetDraining and Stop take turns and the last record set is the
  // one in etcd. Never held by readers of the state below.
  absl::Mutex loop_mu_;
  NodeRecord record_ ABSL_GUARDED_BY(loop_mu_);
  bool started_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool fenced_ ABSL_GUARDED_BY(loop_mu_) = false;  // the guard failed: never written again
  // record_ changed (or a put failed) since it was last written.
  bool dirty_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool in_outage_ ABSL_GUARDED_BY(loop_mu_) = false;
  int64_t outage_failures_ ABSL_GUARDED_BY(loop_mu_) = 0;
  absl::Duration backoff_ ABSL_GUARDED_BY(loop_mu_);
  Scheduler::TimerId timer_ ABSL_GUARDED_BY(loop_mu_) = 0;
  absl::Time renewed_at_ ABSL_GUARDED_BY(loop_mu_);     // last grant or renewal
  absl::Duration lease_ttl_ ABSL_GUARDED_BY(loop_mu_);  // as etcd last said
  std::mt19937_64 jitter_ ABSL_GUARDED_BY(loop_mu_);

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(loop_mu_);
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;        // granted, not known to be gone
  bool registered_ ABSL_GUARDED_BY(mu_) = false;  // record_ put under lease_
  bool stale_ ABSL_GUARDED_BY(mu_) = false;       // not renewed for a whole TTL
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_REGISTRAR_H_
