// How a client picks the coordinator for Begin: round_robin, random, or
// weighted (smooth weighted round-robin, as nginx does it: over any window
// of sum(weights) picks, each node is picked exactly weight times, spread
// out rather than in runs).
#ifndef TXCOORD_CLUSTER_BALANCER_H_
#define TXCOORD_CLUSTER_BALANCER_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cluster/node_record.h"

namespace txcoord::cluster {

enum class BalancePolicy { kRoundRobin, kRandom, kWeighted };

// "round_robin", "random", "weighted"; INVALID_ARGUMENT listing them otherwise.
absl::StatusOr<BalancePolicy> ParseBalancePolicy(const std::string& name);
const char* BalancePolicyName(BalancePolicy policy);

// Thread-safe. Keeps per-node state across calls (by node id), so the
// candidate list may change between calls (nodes come and go).
class Balancer final {
 public:
  explicit Balancer(BalancePolicy policy, uint64_t seed = std::random_device{}());

  // Index into `candidates` (non-empty; sorted by node id, as Discovery
  // returns them).
  size_t Pick(const std::vector<NodeRecord>& candidates);

 private:
  size_t PickRoundRobinLocked(const std::vector<NodeRecord>& candidates)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t PickWeightedLocked(const std::vector<NodeRecord>& candidates)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BalancePolicy policy_;
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  // round_robin: the node id picked last; the next pick is the one after it.
  std::string last_ ABSL_GUARDED_BY(mu_);
  // weighted: each candidate's current weight (smooth weighted
  // round-robin), only for the candidates of the last pick.
  absl::flat_hash_map<std::string, int64_t> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_BALANCER_H_
