// Keeps this daemon's NodeRecord in etcd under a lease it renews: the loop
// of docs/cluster.md "Leases". Runs on a Scheduler (the daemon's
// TimerQueue, or the simulator's loop); its etcd calls are made from the
// scheduler's callbacks, so give it a scheduler of its own in a daemon.
#ifndef TXCOORD_CLUSTER_REGISTRAR_H_
#define TXCOORD_CLUSTER_REGISTRAR_H_

#include <atomic>
#include <cstdint>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "cluster/node_record.h"
#include "common/scheduled_scope.h"
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
  // The loop's step: renew the lease, or register again when it is gone.
  void Tick();
  // Grants a lease and puts the record under it.
  absl::Status RegisterLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failed etcd call: the next try, backed off and jittered.
  void RetryLater(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Etcd* const etcd_;
  const RegistrarOptions options_;
  const std::string key_;
  const absl::Duration renew_every_;
  ScheduledScope scope_;
  // Held across etcd calls: the loop, SetDraining and Stop take turns.
  absl::Mutex mu_;
  NodeRecord record_ ABSL_GUARDED_BY(mu_);
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool in_outage_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 jitter_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> keepalive_failures_{0};
  std::atomic<int64_t> registrations_{0};
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_REGISTRAR_H_
