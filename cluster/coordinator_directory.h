// Where a client's calls go: Begin to a coordinator picked by policy, every
// later call for a txid to the coordinator that issued it (the txid's first
// part is its owner's node id, resolved through the registry, never by IP).
// StaticCoordinatorDirectory is the single-coordinator case (no etcd).
#ifndef TXCOORD_CLUSTER_COORDINATOR_DIRECTORY_H_
#define TXCOORD_CLUSTER_COORDINATOR_DIRECTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cluster/balancer.h"
#include "cluster/discovery.h"

namespace txcoord::cluster {

struct CoordinatorChoice {
  std::string node_id;  // empty for a static directory
  std::string endpoint;
};

// Thread-safe.
class CoordinatorDirectory {
 public:
  virtual ~CoordinatorDirectory() = default;
  // The coordinator for a new transaction, skipping node ids in `exclude`
  // (ones that just failed). UNAVAILABLE naming what was tried when none.
  virtual absl::StatusOr<CoordinatorChoice> PickForBegin(
      const std::vector<std::string>& exclude = {}) = 0;
  // The coordinator that owns `txid`. INVALID_ARGUMENT for a malformed
  // txid; NOT_FOUND when its owner is not registered.
  virtual absl::StatusOr<CoordinatorChoice> Owner(const std::string& txid) = 0;
};

// One coordinator at a fixed address: owns every txid.
class StaticCoordinatorDirectory final : public CoordinatorDirectory {
 public:
  explicit StaticCoordinatorDirectory(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  absl::StatusOr<CoordinatorChoice> PickForBegin(const std::vector<std::string>&) override {
    return CoordinatorChoice{"", endpoint_};
  }
  absl::StatusOr<CoordinatorChoice> Owner(const std::string&) override {
    return CoordinatorChoice{"", endpoint_};
  }

 private:
  const std::string endpoint_;
};

// The coordinators of `service` in a Discovery view, balanced by `policy`.
class RegistryCoordinatorDirectory final : public CoordinatorDirectory {
 public:
  // `discovery` must outlive this object.
  RegistryCoordinatorDirectory(Discovery* discovery, std::string service, BalancePolicy policy);
  absl::StatusOr<CoordinatorChoice> PickForBegin(
      const std::vector<std::string>& exclude = {}) override;
  absl::StatusOr<CoordinatorChoice> Owner(const std::string& txid) override;

  // How often PickForBegin chose `node_id` (the demo's summary, tests).
  int64_t picks(const std::string& node_id);

 private:
  Discovery* const discovery_;
  const std::string service_;
  Balancer balancer_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> picks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_COORDINATOR_DIRECTORY_H_
