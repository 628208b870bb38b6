#include "cluster/balancer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace txcoord::cluster {

absl::StatusOr<BalancePolicy> ParseBalancePolicy(const std::string& name) {
  for (BalancePolicy policy :
       {BalancePolicy::kRoundRobin, BalancePolicy::kRandom, BalancePolicy::kWeighted}) {
    if (name == BalancePolicyName(policy)) return policy;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown balancing policy \"", name.substr(0, 64),
                                                 "\": round_robin, random or weighted"));
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
  return "unknown";
}

Balancer::Balancer(BalancePolicy policy, uint64_t seed) : policy_(policy) {
  absl::MutexLock lock(&mu_);
  rng_.seed(seed);
}

size_t Balancer::Pick(const std::vector<NodeRecord>& candidates) {
  TXCOORD_CHECK(!candidates.empty()) << "Balancer::Pick without candidates";
  absl::MutexLock lock(&mu_);
  switch (policy_) {
    case BalancePolicy::kRoundRobin:
      return PickRoundRobinLocked(candidates);
    case BalancePolicy::kRandom:
      return std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
    case BalancePolicy::kWeighted:
      return PickWeightedLocked(candidates);
  }
  return 0;
}

size_t Balancer::PickRoundRobinLocked(const std::vector<NodeRecord>& candidates) {
  // The first node id after the last one picked, wrapping around: by id
  // rather than by position, so that nodes coming or going neither skip a
  // node nor pick one twice in a row.
  size_t next = candidates.size();
  size_t first = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const std::string& id = candidates[i].node_id;
    if (id < candidates[first].node_id) first = i;
    if (id > last_ && (next == candidates.size() || id < candidates[next].node_id)) next = i;
  }
  if (next == candidates.size()) next = first;
  last_ = candidates[next].node_id;
  return next;
}

size_t Balancer::PickWeightedLocked(const std::vector<NodeRecord>& candidates) {
  // nginx's smooth weighted round-robin: every candidate gains its weight,
  // the one with the most is picked and pays back the total. Over
  // sum(weights) picks from zero, each is picked exactly weight times, and
  // the state is back at zero.
  absl::flat_hash_map<std::string, int64_t> next;
  next.reserve(candidates.size());
  int64_t total = 0;
  size_t best = 0;
  int64_t best_current = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int64_t weight = std::clamp<int64_t>(candidates[i].weight, 1, 1000);
    auto old = current_.find(candidates[i].node_id);
    int64_t& current = next[candidates[i].node_id];
    current = (old == current_.end() ? 0 : old->second) + weight;
    total += weight;
    if (current > best_current) {
      best = i;
      best_current = current;
    }
  }
  next[candidates[best].node_id] -= total;
  // Nodes that are no longer candidates leave the state: it stays as large
  // as one candidate list.
  current_.swap(next);
  return best;
}

}  // namespace txcoord::cluster
