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
  absl::StatusOr<std::vector<NodeRecord>> coordinators = discovery_->Coordinators(service_);
  if (!coordinators.ok()) return coordinators.status();
  std::vector<NodeRecord> candidates;
  std::vector<std::string> excluded;
  candidates.reserve(coordinators->size());
  for (NodeRecord& record : *coordinators) {
    if (std::find(exclude.begin(), exclude.end(), record.node_id) == exclude.end()) {
      candidates.push_back(std::move(record));
    } else {
      excluded.push_back(record.node_id);
    }
  }
  if (candidates.empty()) {
    return absl::UnavailableError(absl::StrCat("every serving coordinator of service \"", service_,
                                               "\" was tried already (",
                                               absl::StrJoin(excluded, ", "), ")"));
  }
  const NodeRecord& chosen = candidates[balancer_.Pick(candidates)];
  {
    absl::MutexLock lock(&mu_);
    ++picks_[chosen.node_id];
  }
  return CoordinatorChoice{chosen.node_id, chosen.endpoint};
}

absl::StatusOr<CoordinatorChoice> RegistryCoordinatorDirectory::Owner(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return parsed.status();
  // Draining or not: a draining coordinator still answers for its txids.
  absl::StatusOr<NodeRecord> owner = discovery_->Coordinator(parsed->cluster);
  if (!owner.ok()) {
    return absl::Status(owner.status().code(),
                        absl::StrCat("owner of txid ", txid, ": ", owner.status().message()));
  }
  return CoordinatorChoice{owner->node_id, owner->endpoint};
}

int64_t RegistryCoordinatorDirectory::picks(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = picks_.find(node_id);
  return it == picks_.end() ? 0 : it->second;
}

}  // namespace txcoord::cluster
