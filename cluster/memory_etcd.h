// A linearizable etcd in memory, for unit tests and the simulator: keys
// with revisions and history, leases that expire by a Scheduler's clock,
// watches, compaction, and an outage switch. Semantics follow etcd.h.
#ifndef TXCOORD_CLUSTER_MEMORY_ETCD_H_
#define TXCOORD_CLUSTER_MEMORY_ETCD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cluster/etcd.h"
#include "common/scheduler.h"

namespace txcoord::cluster {

// Thread-safe. Lease expiry and watch callbacks run as callbacks of
// `scheduler`, which must outlive this object.
class MemoryEtcd final : public Etcd {
 public:
  explicit MemoryEtcd(Scheduler* scheduler);
  ~MemoryEtcd() override;

  // false: every call fails with UNAVAILABLE and every open watch ends
  // with on_error(UNAVAILABLE); leases keep counting down. true: back.
  void SetAvailable(bool available);
  // true: etcd's space quota alarm (NOSPACE) is raised, and etcd takes only
  // reads, deletes and keep-alives: a put, a transaction that puts and a
  // lease grant fail with RESOURCE_EXHAUSTED. false: disarmed.
  void SetSpaceExceeded(bool exceeded);
  absl::Status Compact(int64_t revision) override;
  int64_t revision();

  absl::StatusOr<RangeResult> Get(const std::string& key, int64_t revision = 0) override;
  absl::StatusOr<RangeResult> GetPrefix(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease = 0) override;
  absl::StatusOr<bool> PutIf(const std::string& key, const std::string& value,
                             int64_t expected_mod_revision, int64_t lease = 0) override;
  absl::StatusOr<int64_t> Delete(const std::string& key) override;
  absl::StatusOr<TxnResult> Txn(const std::vector<TxnCompare>& compares,
                                const std::vector<TxnOp>& writes) override;
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override;
  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) override;
  absl::Status RevokeLease(int64_t lease) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> WatchPrefix(const std::string& prefix,
                                                           int64_t start_revision,
                                                           EventsFn on_events,
                                                           ErrorFn on_error) override;
  std::string Describe() const override { return "etcd in memory"; }

 private:
  struct Lease {
    absl::Duration ttl;
    absl::Time expires;
    Scheduler::TimerId timer = 0;
  };
  struct Watcher;
  class Handle;

  absl::Status CheckAvailable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckSpace() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> PutLocked(const std::string& key, const std::string& value, int64_t lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t DeleteLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The writes of one revision (revision_ already advanced to it).
  void PutAt(const std::string& key, const std::string& value, int64_t lease, int64_t revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DeleteAt(const std::string& key, int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ArmExpiry(int64_t id, Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Expire(int64_t id);
  // Queues `event` to every watcher whose prefix matches it.
  void Publish(const WatchEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Deliver(std::shared_ptr<Watcher> watcher, std::vector<WatchEvent> events,
                      int64_t revision);
  void Fail(std::shared_ptr<Watcher> watcher, absl::Status status);

  Scheduler* const scheduler_;
  absl::Mutex mu_;
  bool available_ ABSL_GUARDED_BY(mu_) = true;
  bool space_exceeded_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;  // etcd starts at 1
  int64_t compacted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_lease_ ABSL_GUARDED_BY(mu_) = 0x1000;
  std::map<std::string, KeyValue> keys_ ABSL_GUARDED_BY(mu_);
  // Every change, in revision order (kDelete events carry key and revision).
  std::vector<WatchEvent> history_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_MEMORY_ETCD_H_
