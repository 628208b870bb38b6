// The simulated network: nodes that crash and restart, messages that are
// delayed, lost, duplicated and reordered, partitions, and RPCs with the
// semantics gRPC gives them (one completion per call: the reply, a deadline
// exceeded, or "unavailable" when the peer is down). No sockets, no threads.
#ifndef TXCOORD_SIM_NETWORK_H_
#define TXCOORD_SIM_NETWORK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sim/event_loop.h"

namespace txcoord::sim {

using NodeId = int;

struct NetworkFaults {
  absl::Duration min_delay = absl::Microseconds(100);
  absl::Duration max_delay = absl::Milliseconds(2);
  double loss = 0;       // per message
  double duplicate = 0;  // per message the sender could resend (idempotent calls)
  double slow = 0;       // share of messages held back, up to slow_max: reordering
  absl::Duration slow_max = absl::Milliseconds(500);
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t slow = 0;
};

// Not thread-safe (one simulation thread). `loop` must outlive it.
class Network final {
 public:
  explicit Network(EventLoop* loop) : loop_(loop) {}
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  NodeId AddNode(const std::string& name);
  const std::string& name(NodeId node) const { return nodes_[node].name; }
  bool up(NodeId node) const { return nodes_[node].up; }
  uint64_t incarnation(NodeId node) const { return nodes_[node].incarnation; }
  // Down, and every message or reply on its way to the old process is lost.
  void Crash(NodeId node);
  void Restart(NodeId node);
  // A process stopped (SIGSTOP, a long GC pause, a frozen VM): what reaches
  // it meanwhile, and what it would run (RunAt), waits and runs in order on
  // Resume. A crash drops what waits.
  void Pause(NodeId node);
  void Resume(NodeId node);
  bool paused(NodeId node) const { return nodes_[node].paused; }
  // Runs `fn` now as `node`'s work, or on Resume if `node` is paused.
  void RunAt(NodeId node, std::function<void()> fn);
  // Cuts `node` off from every other node for `duration`.
  void Isolate(NodeId node, absl::Duration duration);
  bool isolated(NodeId node) const { return nodes_[node].isolated_until > loop_->now(); }
  void Heal();

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }
  const NetworkStats& stats() const { return stats_; }

  // `deliver` runs at `to` after a random delay, unless the message is lost,
  // a side is isolated, or `to` is down or restarted by then. With
  // `may_duplicate`, a second copy may arrive as well.
  void Send(NodeId from, NodeId to, const std::string& what, bool may_duplicate,
            std::function<void()> deliver);

  // A unary RPC. `serve` runs at `to` and answers through its argument, now
  // or later (once; a restarted server never answers). `done` runs exactly
  // once at `from`, unless `from` crashed meanwhile: with the reply, with
  // DEADLINE_EXCEEDED after `timeout`, or with UNAVAILABLE soon when `to` is
  // down. R is absl::Status or absl::StatusOr<T>.
  template <typename R>
  void Call(NodeId from, NodeId to, const std::string& what, absl::Duration timeout,
            bool idempotent, std::function<void(std::function<void(R)>)> serve,
            std::function<void(R)> done);

 private:
  struct Node {
    std::string name;
    bool up = true;
    uint64_t incarnation = 0;
    absl::Time isolated_until = absl::InfinitePast();
    bool paused = false;
    std::vector<std::function<void()>> held;  // while paused, in arrival order
  };
  absl::Duration Delay();

  EventLoop* const loop_;
  std::vector<Node> nodes_;
  NetworkFaults faults_;
  NetworkStats stats_;
};

template <typename R>
void Network::Call(NodeId from, NodeId to, const std::string& what, absl::Duration timeout,
                   bool idempotent, std::function<void(std::function<void(R)>)> serve,
                   std::function<void(R)> done) {
  struct State {
    bool completed = false;
    uint64_t caller = 0;
    std::function<void(R)> done;
  };
  auto state = std::make_shared<State>();
  state->caller = incarnation(from);
  state->done = std::move(done);
  // A paused caller hears the answer when it resumes.
  auto finish = [this, state, from](R result) {
    RunAt(from, [this, state, from, result = std::move(result)]() mutable {
      if (state->completed) return;
      state->completed = true;
      if (!up(from) || incarnation(from) != state->caller) return;  // the caller died
      std::function<void(R)> done_fn = std::move(state->done);
      done_fn(std::move(result));
    });
  };
  loop_->After(timeout, [finish, what] {
    finish(R(absl::DeadlineExceededError(absl::StrCat(what, ": deadline exceeded"))));
  });
  if (!up(to) && !isolated(from) && !isolated(to)) {
    // Connection refused comes back fast; a partition only times out.
    loop_->After(Delay(), [finish, what] {
      finish(R(absl::UnavailableError(absl::StrCat(what, ": connection refused"))));
    });
    return;
  }
  Send(from, to, what, idempotent, [this, from, to, what, serve, finish] {
    const uint64_t server = incarnation(to);
    serve([this, from, to, what, server, finish](R reply) {
      if (!up(to) || incarnation(to) != server) return;
      Send(to, from, absl::StrCat(what, " reply"), false, [finish, reply] { finish(reply); });
    });
  });
}

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_NETWORK_H_
