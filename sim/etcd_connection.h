// One simulated process's connection to the etcd the run shares, with the
// faults of a connection rather than of etcd: cut for good when the process
// crashes (nothing the dead process's objects do on their way out, such as
// the decision log's orderly Close, reaches etcd), cut off for a while (a
// partition between this process and etcd alone), and a write applied but
// its answer lost, as with the daemon's EtcdClient: the caller then hears
// UNAVAILABLE, or the answer of the same write sent again to another member
// (a conditional one then fails: its own first try changed what it
// compares).
#ifndef TXCOORD_SIM_ETCD_CONNECTION_H_
#define TXCOORD_SIM_ETCD_CONNECTION_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"
#include "sim/event_loop.h"

namespace txcoord::sim {

// Not thread-safe (one simulation thread). `etcd` and `loop` must outlive
// it.
class EtcdConnection final : public cluster::Etcd {
 public:
  // `name` prefixes the trace lines of lost answers; `lost_answer` is the
  // chance a write's answer is lost.
  EtcdConnection(cluster::Etcd* etcd, EventLoop* loop, std::string name, double lost_answer);
  EtcdConnection(const EtcdConnection&) = delete;
  EtcdConnection& operator=(const EtcdConnection&) = delete;

  // The process is gone: every call fails from now on.
  void Cut() { cut_ = true; }
  // Every call fails until `until` (a later cut-off extends it).
  void CutOff(absl::Time until) { cut_off_until_ = std::max(cut_off_until_, until); }

  absl::StatusOr<cluster::RangeResult> Get(const std::string& key, int64_t revision) override;
  absl::StatusOr<cluster::RangeResult> GetPrefix(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease) override;
  absl::StatusOr<bool> PutIf(const std::string& key, const std::string& value,
                             int64_t expected_mod_revision, int64_t lease) override;
  absl::StatusOr<int64_t> Delete(const std::string& key) override;
  absl::StatusOr<cluster::TxnResult> Txn(const std::vector<cluster::TxnCompare>& compares,
                                         const std::vector<cluster::TxnOp>& writes) override;
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override;
  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) override;
  absl::Status RevokeLease(int64_t lease) override;
  absl::StatusOr<std::unique_ptr<cluster::WatchHandle>> WatchPrefix(const std::string& prefix,
                                                                    int64_t start_revision,
                                                                    EventsFn on_events,
                                                                    ErrorFn on_error) override;
  absl::Status Compact(int64_t revision) override;
  std::string Describe() const override { return etcd_->Describe(); }

 private:
  bool unreachable() const { return cut_ || loop_->now() < cut_off_until_; }
  absl::Status Unreachable() const;
  // A write: made once, or made and its answer lost (see above).
  template <typename T>
  absl::StatusOr<T> Write(const char* what, const std::function<absl::StatusOr<T>()>& call);

  cluster::Etcd* const etcd_;
  EventLoop* const loop_;
  const std::string name_;
  const double lost_answer_;
  bool cut_ = false;
  absl::Time cut_off_until_ = absl::InfinitePast();
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_ETCD_CONNECTION_H_
