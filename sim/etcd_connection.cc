#include "sim/etcd_connection.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace txcoord::sim {

EtcdConnection::EtcdConnection(cluster::Etcd* etcd, EventLoop* loop, std::string name,
                               double lost_answer)
    : etcd_(etcd), loop_(loop), name_(std::move(name)), lost_answer_(lost_answer) {}

absl::Status EtcdConnection::Unreachable() const {
  if (cut_) return absl::UnavailableError("the process is gone");
  return absl::UnavailableError(
      absl::StrCat("etcd unreachable at ", Describe(), ": cut off from this process"));
}

template <typename T>
absl::StatusOr<T> EtcdConnection::Write(const char* what,
                                        const std::function<absl::StatusOr<T>()>& call) {
  if (unreachable()) return Unreachable();
  if (!loop_->Chance(lost_answer_)) return call();
  absl::StatusOr<T> first = call();
  if (!first.ok()) return first;
  if (loop_->Chance(0.5)) {
    loop_->Trace(absl::StrCat(name_, " etcd ", what, ": applied, answer lost"));
    return absl::UnavailableError(
        absl::StrCat("etcd unreachable at ", Describe(), ": deadline exceeded"));
  }
  loop_->Trace(absl::StrCat(name_, " etcd ", what, ": applied, answer lost, sent again"));
  return call();
}

absl::StatusOr<cluster::RangeResult> EtcdConnection::Get(const std::string& key, int64_t revision) {
  if (unreachable()) return Unreachable();
  return etcd_->Get(key, revision);
}

absl::StatusOr<cluster::RangeResult> EtcdConnection::GetPrefix(const std::string& prefix) {
  if (unreachable()) return Unreachable();
  return etcd_->GetPrefix(prefix);
}

absl::StatusOr<int64_t> EtcdConnection::Put(const std::string& key, const std::string& value,
                                            int64_t lease) {
  return Write<int64_t>("Put", [&] { return etcd_->Put(key, value, lease); });
}

absl::StatusOr<bool> EtcdConnection::PutIf(const std::string& key, const std::string& value,
                                           int64_t expected_mod_revision, int64_t lease) {
  return Write<bool>("PutIf",
                     [&] { return etcd_->PutIf(key, value, expected_mod_revision, lease); });
}

absl::StatusOr<int64_t> EtcdConnection::Delete(const std::string& key) {
  return Write<int64_t>("Delete", [&] { return etcd_->Delete(key); });
}

absl::StatusOr<cluster::TxnResult> EtcdConnection::Txn(
    const std::vector<cluster::TxnCompare>& compares, const std::vector<cluster::TxnOp>& writes) {
  return Write<cluster::TxnResult>("Txn", [&] { return etcd_->Txn(compares, writes); });
}

absl::Status EtcdConnection::Compact(int64_t revision) {
  if (unreachable()) return Unreachable();
  return etcd_->Compact(revision);
}

absl::StatusOr<int64_t> EtcdConnection::GrantLease(absl::Duration ttl) {
  return Write<int64_t>("GrantLease", [&] { return etcd_->GrantLease(ttl); });
}

absl::StatusOr<absl::Duration> EtcdConnection::KeepAlive(int64_t lease) {
  return Write<absl::Duration>("KeepAlive", [&] { return etcd_->KeepAlive(lease); });
}

absl::Status EtcdConnection::RevokeLease(int64_t lease) {
  if (unreachable()) return Unreachable();
  return etcd_->RevokeLease(lease);
}

absl::StatusOr<std::unique_ptr<cluster::WatchHandle>> EtcdConnection::WatchPrefix(
    const std::string& prefix, int64_t start_revision, EventsFn on_events, ErrorFn on_error) {
  if (unreachable()) return Unreachable();
  return etcd_->WatchPrefix(prefix, start_revision, std::move(on_events), std::move(on_error));
}

}  // namespace txcoord::sim
