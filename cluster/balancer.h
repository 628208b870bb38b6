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

#include "absl/status/statusor.h"
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
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_BALANCER_H_
