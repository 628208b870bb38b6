#include "cluster/balancer.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace txcoord::cluster {

absl::StatusOr<BalancePolicy> ParseBalancePolicy(const std::string& name) {
  if (name == "round_robin") return BalancePolicy::kRoundRobin;
  if (name == "random") return BalancePolicy::kRandom;
  if (name == "weighted") return BalancePolicy::kWeighted;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown balancing policy \"", name, "\": use round_robin, random or weighted"));
}

const char* BalancePolicyName(BalancePolicy policy) {
  switch (policy) {
    case BalancePolicy::kRoundRobin:
      return "round_robin";
    case BalancePolicy::kRandom:
      return "random";
    case BalancePolicy::kWeighted:
      return "weighted";
  }
  return "?";
}

Balancer::Balancer(BalancePolicy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

size_t Balancer::Pick(const std::vector<NodeRecord>& candidates) {
  if (candidates.size() <= 1) return 0;
  absl::MutexLock lock(&mu_);
  switch (policy_) {
    case BalancePolicy::kRoundRobin:
      return next_++ % candidates.size();
    case BalancePolicy::kRandom:
      return std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
    case BalancePolicy::kWeighted:
      break;
  }
  // Smooth weighted round-robin: every candidate gains its weight; the one
  // with the most is picked and pays back the total. Over sum(weights)
  // picks each is picked exactly weight times, interleaved.
  absl::flat_hash_map<std::string, int64_t> current;
  int64_t total = 0;
  size_t best = 0;
  int64_t best_value = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const NodeRecord& node = candidates[i];
    auto it = current_.find(node.node_id);
    int64_t value = (it == current_.end() ? 0 : it->second) + node.weight;
    total += node.weight;
    current[node.node_id] = value;
    if (i == 0 || value > best_value) {
      best = i;
      best_value = value;
    }
  }
  current[candidates[best].node_id] -= total;
  // Only the present candidates are kept: the state stays bounded.
  current_ = std::move(current);
  return best;
}

}  // namespace txcoord::cluster
