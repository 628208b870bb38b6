// The coordinator's decision log on etcd (--log=etcd; docs/ha.md): the
// records recovery needs (COMMIT, ONE_PHASE, MARK_DONE, the retained
// outcomes and their EXPIRED mark) are keys under the space's log prefix,
// and END deletes a transaction's keys, so the store holds the open
// transactions and the outcome bitmaps, never the history:
//
//   log/tx/<txid>/commit               COMMIT payload (records.h)
//   log/tx/<txid>/mark/<participant>   MARK_DONE payload
//   log/tx/<txid>/onephase             ONE_PHASE payload
//   log/retained/<epoch>/<first seq>   RETAINED payload: one bitmap chunk
//   log/expired                        EXPIRED payload
//
// Group commit: the records queued while one etcd transaction is in flight
// go together in the next, and every transaction is guarded by the
// ownership fence (space_owner.h). A refused guard fails the log for good
// (fail-stop): this process no longer owns the space and decides nothing.
// So does an error that sending again cannot cure (etcd's space alarm, a
// request etcd refuses): the process must then stop, or it would keep the
// space, its lease renewed by the keeper, with a log that takes nothing.
// A write whose answer was lost is sent again as it was (every write is a
// put or delete of a whole key, so repeating it is harmless) until etcd
// answers.
#ifndef TXCOORD_COORDINATOR_HA_ETCD_DECISION_LOG_H_
#define TXCOORD_COORDINATOR_HA_ETCD_DECISION_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "common/scheduled_scope.h"
#include "common/scheduler.h"
#include "coordinator/ha/space_owner.h"
#include "coordinator/recovery_state.h"
#include "coordinator/retained_outcomes.h"
#include "coordinator/wal/decision_log.h"

namespace txcoord::coordinator::ha {

// Feeds every record of the space's log to `state`, in the order recovery
// needs (EXPIRED, RETAINED, then each transaction's COMMIT, MARK_DONE,
// ONE_PHASE). DATA_LOSS for a key or value it cannot read. *keys (may be
// null) is set to how many keys were read.
absl::Status LoadDecisions(cluster::Etcd* etcd, const SpaceKeys& keys, RecoveryState* state,
                           size_t* keys_read = nullptr);

struct EtcdLogOptions {
  SpaceKeys keys;
  Ownership ownership;
  RetentionOptions retention;
  // Records per etcd transaction: each is at most one write, plus one per
  // bitmap chunk they touch, under etcd's default limit of 128.
  size_t max_records_per_txn = 60;
  // How long a record appended without sync may wait for company.
  absl::Duration unsynced_delay = absl::Milliseconds(5);
  // Retry of a write etcd did not answer: from this, doubling, to max.
  absl::Duration min_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  // How often retained chunks past the window are deleted.
  absl::Duration prune_every = absl::Minutes(1);
  // A deliberate bug, for the simulator's checker test only (txsim
  // --bug_unfenced_log): the writes go without the ownership fence, so a
  // process that lost the space still writes decisions. Never set it
  // anywhere else.
  bool unfenced_for_tests = false;
};

// Thread-safe. Writes from callbacks of `scheduler` (a thread of its own in
// a daemon: the etcd calls block), where every `done` also runs.
class EtcdDecisionLog final : public wal::DecisionLog {
 public:
  // `recovered`: what LoadDecisions read at the start, so that END knows
  // which transactions have keys and the outcome bitmaps go on from it.
  // `on_failure` (may be empty) runs once, from the writer, when the log
  // fails for good: FAILED_PRECONDITION when etcd refused a write because
  // another process owns the space, or the error etcd answered that sending
  // again cannot cure (e.g. RESOURCE_EXHAUSTED: its space quota is exceeded).
  // The process must stop and leave the space to a standby.
  EtcdDecisionLog(cluster::Etcd* etcd, Scheduler* scheduler, EtcdLogOptions options,
                  const RecoveryState& recovered,
                  std::function<void(const absl::Status&)> on_failure);
  ~EtcdDecisionLog() override;  // Close()

  void Append(uint8_t type, std::string payload, bool sync,
              std::function<void(absl::Status)> done) override;
  absl::Status health() const override;

  // Writes what is queued (one attempt per batch, for shutdown), then
  // stops; later appends fail. Never call it from the scheduler's thread.
  void Close();

  // For tests and metrics.
  uint64_t transactions_written() const;

 private:
  struct Pending {
    uint8_t type = 0;
    std::string payload;
    bool sync = false;
    std::function<void(absl::Status)> done;
  };
  // The writes of one batch, and what they change in the state below once
  // etcd has them.
  struct Batch;

  // The batch to retry, or else up to max_records_per_txn queued records.
  std::vector<Pending> TakeRecordsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes up to max_records_per_txn records and writes them, or retries.
  void Flush();
  absl::Status BuildBatch(std::vector<Pending>& records, Batch* batch);
  void ScheduleFlushLocked(absl::Duration delay) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails the log with `status`: every queued record's done gets it.
  void FailLocked(const absl::Status& status, std::vector<Pending>* answer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The comparison every write is guarded by: the ownership's fence.
  std::vector<cluster::TxnCompare> Guard() const;
  std::string TxKey(const std::string& txid) const;
  std::string ChunkKey(uint64_t epoch, uint64_t first_sequence) const;

  cluster::Etcd* const etcd_;
  const EtcdLogOptions options_;
  const std::function<void(const absl::Status&)> on_failure_;

  mutable absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint64_t transactions_written_ ABSL_GUARDED_BY(mu_) = 0;

  // The writer's state: touched only by Flush (one at a time) and Close.
  enum class Keys { kCommit, kOnePhase };
  absl::flat_hash_map<std::string, Keys> with_keys_;  // txids with keys in etcd
  RetainedOutcomes retained_;
  std::set<std::pair<uint64_t, uint64_t>> written_chunks_;  // (epoch, first) in etcd
  absl::Time last_prune_;
  absl::Duration backoff_;
  std::vector<Pending> in_flight_ ABSL_GUARDED_BY(mu_);  // the batch being retried, if any

  ScheduledScope scope_;  // last: closed first
};

}  // namespace txcoord::coordinator::ha

#endif  // TXCOORD_COORDINATOR_HA_ETCD_DECISION_LOG_H_
