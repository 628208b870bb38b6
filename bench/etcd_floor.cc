#include "bench/etcd_floor.h"

#include "absl/strings/str_cat.h"

namespace txcoord::bench {

absl::StatusOr<EtcdRoundTrips> MeasureEtcdRoundTrips(cluster::Etcd* etcd,
                                                     const std::string& key_prefix, int value_bytes,
                                                     Clock::duration duration) {
  const std::string fence_key = key_prefix + "fence";
  const std::string record_key = key_prefix + "record";
  if (absl::StatusOr<int64_t> put = etcd->Put(fence_key, "ha_bench"); !put.ok()) {
    return put.status();
  }
  absl::StatusOr<cluster::RangeResult> fence = etcd->Get(fence_key);
  if (!fence.ok()) return fence.status();
  if (fence->kvs.empty()) return absl::InternalError(absl::StrCat(fence_key, " vanished"));
  const std::vector<cluster::TxnCompare> guard = {
      {fence_key, cluster::TxnCompare::Target::kCreateRevision, fence->kvs[0].create_revision}};
  const std::vector<cluster::TxnOp> write = {
      {cluster::TxnOp::Type::kPut, record_key, std::string(static_cast<size_t>(value_bytes), 'r')}};

  EtcdRoundTrips trips;
  const Clock::time_point txn_end = Clock::now() + duration * 2 / 3;
  while (Clock::now() < txn_end || trips.txn.size() < 10) {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<cluster::TxnResult> result = etcd->Txn(guard, write);
    if (!result.ok()) return result.status();
    if (!result->succeeded) {
      return absl::InternalError(absl::StrCat("etcd refused the floor's write under ", fence_key));
    }
    trips.txn.push_back(Clock::now() - start);
  }
  const Clock::time_point read_end = Clock::now() + duration / 3;
  while (Clock::now() < read_end || trips.read.size() < 10) {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<cluster::RangeResult> result = etcd->Get(record_key);
    if (!result.ok()) return result.status();
    trips.read.push_back(Clock::now() - start);
  }
  return trips;
}

}  // namespace txcoord::bench
