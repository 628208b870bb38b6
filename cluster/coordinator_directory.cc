#include "cluster/coordinator_directory.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/txid.h"

namespace txcoord::cluster {

RegistryCoordinatorDirectory::RegistryCoordinatorDirectory(Discovery* discovery,
                                                           std::string service,
                                                           BalancePolicy policy)
    : discovery_(discovery), service_(std::move(service)), balancer_(policy) {}

absl::StatusOr<CoordinatorChoice> RegistryCoordinatorDirectory::PickForBegin(
    const std::vector<std::string>& exclude) {
  absl::StatusOr<std::vector<NodeRecord>> candidates = discovery_->Coordinators(service_);
  if (!candidates.ok()) return candidates.status();
  candidates->erase(std::remove_if(candidates->begin(), candidates->end(),
                                   [&exclude](const NodeRecord& node) {
                                     return std::find(exclude.begin(), exclude.end(),
                                                      node.node_id) != exclude.end();
                                   }),
                    candidates->end());
  if (candidates->empty()) {
    return absl::UnavailableError(absl::StrCat("every coordinator of service \"", service_,
                                               "\" failed: ", absl::StrJoin(exclude, ", ")));
  }
  const NodeRecord& chosen = (*candidates)[balancer_.Pick(*candidates)];
  {
    absl::MutexLock lock(&mu_);
    ++picks_[chosen.node_id];
  }
  return CoordinatorChoice{chosen.node_id, chosen.endpoint};
}

absl::StatusOr<CoordinatorChoice> RegistryCoordinatorDirectory::Owner(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<NodeRecord> owner = discovery_->Coordinator(parsed->cluster);
  if (!owner.ok()) return owner.status();
  return CoordinatorChoice{owner->node_id, owner->endpoint};
}

int64_t RegistryCoordinatorDirectory::picks(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = picks_.find(node_id);
  return it == picks_.end() ? 0 : it->second;
}

}  // namespace txcoord::cluster
