// For the cluster core's unit tests: an Etcd that forwards to another (a
// MemoryEtcd), counts the calls, and fails the operations a test names,
// e.g. a Put after a successful GrantLease.
#ifndef TXCOORD_CLUSTER_FAULTY_ETCD_TEST_UTIL_H_
#define TXCOORD_CLUSTER_FAULTY_ETCD_TEST_UTIL_H_

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cluster/etcd.h"

namespace txcoord::cluster::testing {

// Thread-safe.
class FaultyEtcd final : public Etcd {
 public:
  explicit FaultyEtcd(Etcd* etcd) : etcd_(etcd) {}

  // Operations that fail with UNAVAILABLE while set.
  std::atomic<bool> fail_put{false};
  std::atomic<bool> fail_watch{false};
  // Calls made (failed or not).
  std::atomic<int> keepalives{0};
  std::atomic<int> calls{0};

  absl::StatusOr<RangeResult> Get(const std::string& key, int64_t revision = 0) override {
    ++calls;
    return etcd_->Get(key, revision);
  }
  absl::StatusOr<RangeResult> GetPrefix(const std::string& prefix) override {
    ++calls;
    return etcd_->GetPrefix(prefix);
  }
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease = 0) override {
    ++calls;
    if (fail_put) return Injected("Put");
    return etcd_->Put(key, value, lease);
  }
  absl::StatusOr<bool> PutIf(const std::string& key, const std::string& value,
                             int64_t expected_mod_revision, int64_t lease = 0) override {
    ++calls;
    if (fail_put) return Injected("PutIf");
    return etcd_->PutIf(key, value, expected_mod_revision, lease);
  }
  absl::StatusOr<int64_t> Delete(const std::string& key) override {
    ++calls;
    return etcd_->Delete(key);
  }
  absl::StatusOr<TxnResult> Txn(const std::vector<TxnCompare>& compares,
                                const std::vector<TxnOp>& writes) override {
    ++calls;
    if (fail_put) return Injected("Txn");
    return etcd_->Txn(compares, writes);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override {
    ++calls;
    return etcd_->GrantLease(ttl);
  }
  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) override {
    ++calls;
    ++keepalives;
    return etcd_->KeepAlive(lease);
  }
  absl::Status RevokeLease(int64_t lease) override {
    ++calls;
    return etcd_->RevokeLease(lease);
  }
  absl::StatusOr<std::unique_ptr<WatchHandle>> WatchPrefix(const std::string& prefix,
                                                           int64_t start_revision,
                                                           EventsFn on_events,
                                                           ErrorFn on_error) override {
    ++calls;
    if (fail_watch) return Injected("WatchPrefix");
    return etcd_->WatchPrefix(prefix, start_revision, std::move(on_events), std::move(on_error));
  }
  absl::Status Compact(int64_t revision) override {
    ++calls;
    return etcd_->Compact(revision);
  }
  std::string Describe() const override { return etcd_->Describe(); }

 private:
  static absl::Status Injected(const char* call) {
    return absl::UnavailableError(std::string("injected failure of ") + call);
  }

  Etcd* const etcd_;
};

}  // namespace txcoord::cluster::testing

#endif  // TXCOORD_CLUSTER_FAULTY_ETCD_TEST_UTIL_H_
