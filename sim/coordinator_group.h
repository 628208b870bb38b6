// The coordinator processes that serve the simulation's one txid space, and
// where requests for it go. Without etcd: one CoordinatorNode on its own
// WAL, the route of every request. With the etcd model: several nodes on
// one MemoryEtcd (linearizable, leases expiring by the simulator's clock):
// the last to take the space owns it and serves, the others are standbys,
// and a request goes where the registry names the owner, which may be a
// node that has lost the space and does not know it yet (paused, or its
// lease just expired), or, for a client whose view of the registry lags,
// the owner before.
#ifndef TXCOORD_SIM_COORDINATOR_GROUP_H_
#define TXCOORD_SIM_COORDINATOR_GROUP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/memory_etcd.h"
#include "sim/coordinator_node.h"
#include "sim/event_loop.h"
#include "sim/history.h"
#include "sim/network.h"

namespace txcoord::sim {

struct CoordinatorGroupOptions {
  CoordinatorNodeOptions node;  // `etcd` is set by the group
  bool etcd_log = false;
  int processes = 2;       // with etcd_log: one owner at a time, the others standbys
  double stale_route = 0;  // with etcd_log: chance a request goes to the owner before
};

// Not thread-safe (one simulation thread). `loop`, `net` and `history` must
// outlive it.
class CoordinatorGroup final {
 public:
  CoordinatorGroup(EventLoop* loop, Network* net, History* history,
                   const CoordinatorGroupOptions& options);
  ~CoordinatorGroup();
  CoordinatorGroup(const CoordinatorGroup&) = delete;
  CoordinatorGroup& operator=(const CoordinatorGroup&) = delete;

  void AddParticipant(const std::string& endpoint, ParticipantNode* node);
  size_t size() const { return nodes_.size(); }
  CoordinatorNode& node(size_t i) { return *nodes_[i]; }
  const CoordinatorNode& node(size_t i) const { return *nodes_[i]; }
  // Null without etcd.
  cluster::MemoryEtcd* etcd() { return etcd_.get(); }

  // Where a request for the space goes now.
  CoordinatorNode* Route();
  // The index of the node that took the space last (0 without etcd).
  size_t owner() const { return owner_; }
  // That node, if it serves now (running, owner, not paused); else null.
  CoordinatorNode* Serving();
  // Takes of the space after the run's first.
  uint64_t takeovers() const { return takes_ > 0 ? takes_ - 1 : 0; }
  // The highest epoch any node took.
  uint64_t max_epoch() const;
  // Why Serving() is null, in words (who holds the space, if anyone).
  std::string NobodyServes();
  // With etcd: one line per transaction whose keys are still in the log
  // (at rest there are none). Empty if etcd cannot be read.
  std::vector<std::string> LogLeftovers();

 private:
  EventLoop* const loop_;
  const CoordinatorGroupOptions options_;
  std::unique_ptr<cluster::MemoryEtcd> etcd_;  // outlives the nodes
  std::vector<std::unique_ptr<CoordinatorNode>> nodes_;
  size_t owner_ = 0;
  size_t previous_owner_ = 0;
  uint64_t takes_ = 0;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_COORDINATOR_GROUP_H_
