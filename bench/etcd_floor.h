// The floor of a decision logged in etcd (--log=etcd), measured in the
// benchmark's own run against the same etcd: one small put in an etcd
// transaction guarded by a comparison, as each batch of the decision log
// is, and one linearizable read, which takes the leader's round to a quorum
// but writes nothing.
#ifndef TXCOORD_BENCH_ETCD_FLOOR_H_
#define TXCOORD_BENCH_ETCD_FLOOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/latency_stats.h"
#include "cluster/etcd.h"

namespace txcoord::bench {

struct EtcdRoundTrips {
  std::vector<Clock::duration> txn;   // a fenced put of value_bytes: a Raft round and an fsync
  std::vector<Clock::duration> read;  // a linearizable Get of that key: a Raft round, no fsync
};

// Puts a fence key under `key_prefix`, then times one call at a time for
// `duration` (at least 10 of each): two thirds Txn("fence's create revision
// is unchanged" → put `value_bytes` at key_prefix + "record"), one third
// Get of that record. `etcd` is not owned; the keys are left in place.
absl::StatusOr<EtcdRoundTrips> MeasureEtcdRoundTrips(cluster::Etcd* etcd,
                                                     const std::string& key_prefix, int value_bytes,
                                                     Clock::duration duration);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_ETCD_FLOOR_H_
