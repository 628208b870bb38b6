#include "sim/coordinator_group.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/ha/space_owner.h"

namespace txcoord::sim {

CoordinatorGroup::CoordinatorGroup(EventLoop* loop, Network* net, History* history,
                                   const CoordinatorGroupOptions& options)
    : loop_(loop), options_(options) {
  if (!options_.etcd_log) {
    nodes_.push_back(std::make_unique<CoordinatorNode>(loop, net, history, net->AddNode("coord"),
                                                       options_.node));
    return;
  }
  etcd_ = std::make_unique<cluster::MemoryEtcd>(loop);
  CoordinatorNodeOptions node_options = options_.node;
  node_options.etcd = etcd_.get();
  for (int i = 0; i < std::max(1, options_.processes); ++i) {
    nodes_.push_back(std::make_unique<CoordinatorNode>(
        loop, net, history, net->AddNode(absl::StrCat("coord", i)), node_options));
    nodes_.back()->set_on_owner([this, i] {
      previous_owner_ = owner_;
      owner_ = static_cast<size_t>(i);
      ++takes_;
    });
  }
}

// The nodes go first: their processes' objects call etcd on the way out.
CoordinatorGroup::~CoordinatorGroup() { nodes_.clear(); }

void CoordinatorGroup::AddParticipant(const std::string& endpoint, ParticipantNode* node) {
  for (auto& n : nodes_) n->AddParticipant(endpoint, node);
}

CoordinatorNode* CoordinatorGroup::Route() {
  if (etcd_ != nullptr && loop_->Chance(options_.stale_route)) {
    return nodes_[previous_owner_].get();
  }
  return nodes_[owner_].get();
}

CoordinatorNode* CoordinatorGroup::Serving() {
  CoordinatorNode* node = nodes_[owner_].get();
  return node->serving() && !node->paused() ? node : nullptr;
}

uint64_t CoordinatorGroup::max_epoch() const {
  uint64_t epoch = 0;
  for (const auto& n : nodes_) epoch = std::max(epoch, n->epoch());
  return epoch;
}

std::string CoordinatorGroup::NobodyServes() {
  const CoordinatorNode& last = *nodes_[owner_];
  std::string why =
      absl::StrCat("no coordinator serves the space (", last.name(), ", its last owner, is ",
                   !last.running()  ? "down"
                   : last.paused()  ? "paused"
                   : last.serving() ? "serving"
                                    : "a standby");
  if (etcd_ != nullptr) {
    const coordinator::ha::SpaceKeys keys =
        coordinator::ha::SpaceKeys::For(options_.node.etcd_prefix, options_.node.engine.cluster_id);
    absl::StatusOr<cluster::RangeResult> owner = etcd_->Get(keys.owner);
    if (owner.ok()) {
      absl::StrAppend(&why, "; etcd names ",
                      owner->kvs.empty() ? "no owner" : owner->kvs[0].value + " its owner");
    }
  }
  return why + ")";
}

std::vector<std::string> CoordinatorGroup::LogLeftovers() {
  std::vector<std::string> left;
  if (etcd_ == nullptr) return left;
  const coordinator::ha::SpaceKeys keys =
      coordinator::ha::SpaceKeys::For(options_.node.etcd_prefix, options_.node.engine.cluster_id);
  const std::string tx = keys.log + "tx/";
  absl::StatusOr<cluster::RangeResult> read = etcd_->GetPrefix(tx);
  if (!read.ok()) return left;
  std::set<std::string> txids;
  for (const cluster::KeyValue& kv : read->kvs) {
    const std::string name = kv.key.substr(tx.size());
    txids.insert(name.substr(0, name.find('/')));
  }
  for (const std::string& txid : txids) {
    left.push_back(absl::StrCat("etcd: the decision log still holds keys of ", txid));
  }
  return left;
}

}  // namespace txcoord::sim
