#include "sim/network.h"

namespace txcoord::sim {

NodeId Network::AddNode(const std::string& name) {
  nodes_.push_back(Node{name});
  return static_cast<NodeId>(nodes_.size() - 1);
}

void Network::Crash(NodeId node) {
  nodes_[node].up = false;
  ++nodes_[node].incarnation;
  nodes_[node].paused = false;
  nodes_[node].held.clear();
}

void Network::Restart(NodeId node) { nodes_[node].up = true; }

void Network::Pause(NodeId node) { nodes_[node].paused = true; }

void Network::Resume(NodeId node) {
  Node& n = nodes_[node];
  if (!n.paused) return;
  n.paused = false;
  // Each as an event of its own, in the order it arrived.
  for (std::function<void()>& fn : n.held) {
    loop_->After(absl::ZeroDuration(),
                 [this, node, incarnation = n.incarnation, fn = std::move(fn)] {
                   if (up(node) && this->incarnation(node) == incarnation) fn();
                 });
  }
  n.held.clear();
}

void Network::RunAt(NodeId node, std::function<void()> fn) {
  if (nodes_[node].paused) {
    nodes_[node].held.push_back(std::move(fn));
    return;
  }
  fn();
}

void Network::Isolate(NodeId node, absl::Duration duration) {
  nodes_[node].isolated_until = loop_->now() + duration;
}

void Network::Heal() {
  for (Node& node : nodes_) node.isolated_until = absl::InfinitePast();
}

absl::Duration Network::Delay() {
  absl::Duration delay = loop_->UniformDuration(faults_.min_delay, faults_.max_delay);
  if (loop_->Chance(faults_.slow)) {
    ++stats_.slow;
    delay += loop_->UniformDuration(absl::ZeroDuration(), faults_.slow_max);
  }
  return delay;
}

void Network::Send(NodeId from, NodeId to, const std::string& what, bool may_duplicate,
                   std::function<void()> deliver) {
  if (!up(from)) return;  // a dead process sends nothing
  ++stats_.sent;
  if (!up(to)) {
    ++stats_.lost;
    loop_->Trace(absl::StrCat(name(from), " -> ", name(to), " DROPPED (peer down) ", what));
    return;
  }
  if (isolated(from) || isolated(to) || loop_->Chance(faults_.loss)) {
    ++stats_.lost;
    loop_->Trace(absl::StrCat(name(from), " -> ", name(to), " LOST ", what));
    return;
  }
  const uint64_t target = incarnation(to);
  int copies = 1;
  if (may_duplicate && loop_->Chance(faults_.duplicate)) {
    ++stats_.duplicated;
    copies = 2;
  }
  auto shared = std::make_shared<std::function<void()>>(std::move(deliver));
  for (int i = 0; i < copies; ++i) {
    loop_->After(Delay(), [this, from, to, what, target, shared, i] {
      if (!up(to) || incarnation(to) != target || isolated(to)) {
        loop_->Trace(absl::StrCat(name(from), " -> ", name(to), " DROPPED (peer down) ", what));
        return;
      }
      RunAt(to, [this, from, to, what, target, shared, i] {
        if (!up(to) || incarnation(to) != target) return;
        loop_->Trace(absl::StrCat(name(from), " -> ", name(to), i > 0 ? " DUP " : " ", what));
        (*shared)();
      });
    });
  }
}

}  // namespace txcoord::sim
