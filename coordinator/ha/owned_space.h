// txcoord --log=etcd (docs/ha.md): this process's hold on its txid space.
// Opening it connects to the etcd of --registry, waits as a standby until
// the space is free, takes it (a new epoch), reads the space's decision log
// into a RecoveryState, and starts the lease keeper; the daemon then runs
// its runtime on log(). Losing the space (etcd refused a write under the
// fence) stops the process at once with exit status 3: it may no longer
// decide or answer for the space, and its new owner drives its
// transactions.
#ifndef TXCOORD_COORDINATOR_HA_OWNED_SPACE_H_
#define TXCOORD_COORDINATOR_HA_OWNED_SPACE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cluster/history_compactor.h"
#include "cluster/node_record.h"
#include "cluster/registry_connection.h"
#include "common/timer_queue.h"
#include "coordinator/ha/etcd_decision_log.h"
#include "coordinator/ha/space_owner.h"
#include "coordinator/recovery_state.h"

namespace txcoord {
class MetricsRegistry;
}

namespace txcoord::coordinator::ha {

// The exit status of a coordinator that lost its space.
inline constexpr int kLostSpaceExitCode = 3;

class OwnedSpace final {
 public:
  // From --registry, --registry_prefix, --registry_ttl (at least 2s) and
  // --etcd_compaction_interval:
  // INVALID_ARGUMENT naming what is missing or wrong; UNAVAILABLE if etcd
  // cannot be reached; CANCELLED if `should_stop` said so while this
  // process was a standby. `self` says who this process is in the owner key.
  // `recovery` is fed the space's decision log; the outcomes' retention
  // window it was made with is the log's.
  static absl::StatusOr<std::unique_ptr<OwnedSpace>> OpenFromFlags(
      const std::string& space, const std::string& self, RecoveryState* recovery,
      MetricsRegistry* metrics, const std::function<bool()>& should_stop);
  // Stops the loops; the lease is left to expire (Close releases it).
  ~OwnedSpace();

  const std::string& space() const { return space_; }
  const Ownership& ownership() const { return ownership_; }
  wal::DecisionLog* log() { return log_.get(); }
  // "etcd at HOST:PORT,... key /txcoord/spaces/c1/owner (lease L, fence R)".
  std::string describe() const;

  // Registers `record` under the fence (Registrar's guard), metrics added.
  absl::Status Register(const cluster::NodeRecord& record, MetricsRegistry* metrics);
  cluster::RegistryConnection* registry() { return registry_.get(); }

  // Writes the queued END records, then releases the space: a standby takes
  // it without waiting for the lease to expire. For a clean shutdown, after
  // the runtime is halted.
  void Close();

 private:
  OwnedSpace() = default;

  std::string space_;
  Ownership ownership_;
  std::unique_ptr<cluster::RegistryConnection> registry_;
  // Threads of their own: the log's etcd calls block, and must not delay
  // the lease's renewal.
  TimerQueue log_timers_;
  TimerQueue keeper_timers_;
  TimerQueue compactor_timers_;
  std::unique_ptr<EtcdDecisionLog> log_;
  std::unique_ptr<OwnershipKeeper> keeper_;
  std::unique_ptr<cluster::HistoryCompactor> compactor_;  // null: --etcd_compaction_interval=0
};

}  // namespace txcoord::coordinator::ha

#endif  // TXCOORD_COORDINATOR_HA_OWNED_SPACE_H_
