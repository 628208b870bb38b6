// The coordinator's ParticipantTransport on the simulated network: every
// call, Batch included, is a Network::Call from the coordinator's node to a
// ParticipantNode, served at delivery time by the node's real participant
// core, with the network's faults (lost, duplicated and late messages,
// partitions, UNAVAILABLE from a node that is down). Under it,
// coordinator::BatchingParticipantClient batches in the simulator exactly
// as it does in the daemon over gRPC.
#ifndef TXCOORD_SIM_SIM_PARTICIPANT_TRANSPORT_H_
#define TXCOORD_SIM_SIM_PARTICIPANT_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "coordinator/participant_transport.h"
#include "sim/event_loop.h"
#include "sim/network.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

struct SimParticipantTransportOptions {
  NodeId from = 0;  // the calling node (the coordinator's)
  // A Batch call carries at most this many entries (the agent's gRPC
  // service takes up to 1000; the participant core has no limit).
  int max_batch_entries = 1000;
};

// Not thread-safe: it runs on the simulation's one thread. Callbacks run
// as events of `loop`, never inside a call, except that a call to an
// endpoint with no node fails at once (UNAVAILABLE). A callback to a
// caller node that crashed meanwhile never runs. `loop`, `net` and every
// node must outlive it.
class SimParticipantTransport final : public coordinator::ParticipantTransport {
 public:
  SimParticipantTransport(EventLoop* loop, Network* net, SimParticipantTransportOptions options);
  SimParticipantTransport(const SimParticipantTransport&) = delete;
  SimParticipantTransport& operator=(const SimParticipantTransport&) = delete;

  // Where calls to `endpoint` go. Without `knows_batch` the node answers
  // Batch UNIMPLEMENTED (an agent from before Batch) and runs nothing.
  void AddParticipant(const std::string& endpoint, ParticipantNode* node, bool knows_batch = true);

  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
               absl::Duration timeout,
               std::function<void(absl::StatusOr<coordinator::Vote>)> done) override;
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override;
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override;
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override;
  void Batch(
      const std::string& endpoint, std::vector<coordinator::BatchEntry> entries,
      absl::Duration timeout,
      std::function<void(absl::StatusOr<std::vector<coordinator::BatchAnswer>>)> done) override;
  int max_batch_entries() const override { return options_.max_batch_entries; }

 private:
  struct Target {
    ParticipantNode* node = nullptr;
    bool knows_batch = true;
  };
  // nullptr if no node has `endpoint`.
  const Target* Find(const std::string& endpoint) const;
  // Serves `serve(node)` at the node of `endpoint` as an idempotent RPC
  // named `what`; `done` gets its reply, or UNAVAILABLE at once if no node
  // has `endpoint`.
  template <typename Reply>
  void Send(const std::string& endpoint, const std::string& what, absl::Duration timeout,
            std::function<Reply(ParticipantNode*)> serve, std::function<void(Reply)> done);

  EventLoop* const loop_;
  Network* const net_;
  const SimParticipantTransportOptions options_;
  std::map<std::string, Target> targets_;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_SIM_PARTICIPANT_TRANSPORT_H_
