// The simulated participant agent: the REAL participant core
// (participant::Participant, SQLite with sessions, row locks, durable
// prepare) on the simulator's in-memory VFS, with the REAL in-doubt
// resolver and the participant's REAL maintenance (idle-branch reaper,
// outcome pruning) on the EventLoop, as txagent runs them on its
// TimerQueues. What is modelled on the simulator's thread:
//
// - Enlist is the participant's synchronous call to the coordinator. Here it
//   reaches the coordinator at once, or is lost (request or reply), or
//   arrives late, after its caller gave up; a lost call is an error to the
//   participant exactly as a gRPC deadline would be.
// - The resolver's QueryOutcome is an RPC over the simulated Network.
// - Lock waits: the lock timeout is zero, so a conflicting Execute fails at
//   once with ABORTED and nothing ever blocks; the client retries it a few
//   times, which is what a bounded wait amounts to.
#ifndef TXCOORD_SIM_PARTICIPANT_NODE_H_
#define TXCOORD_SIM_PARTICIPANT_NODE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "participant/in_doubt_resolver.h"
#include "participant/participant.h"
#include "sim/event_loop.h"
#include "sim/network.h"

namespace txcoord::sim {

class CoordinatorNode;

// Where a request for the coordinator goes now: the process that owns the
// space, as the registry names it (perhaps a stale answer).
using CoordinatorRoute = std::function<CoordinatorNode*()>;

struct ParticipantNodeOptions {
  std::string name;                                 // participant name and endpoint "sim:<name>"
  std::string dir;                                  // its disk in the SimVfs
  absl::Duration query_timeout = absl::Seconds(1);  // the resolver's QueryOutcome
  participant::ResolverOptions resolver;            // on simulated time
  absl::Duration idle_timeout = absl::Seconds(10);  // ParticipantOptions::branch_idle_timeout
  // Chance that a start of the agent defers every vote it can
  // (VoteDeferral::kAlways); otherwise it never does (on one thread no sync
  // is ever contended).
  double deferred_votes = 0;
  // Deliberate bug for the liveness checker's own test: no in-doubt
  // resolver, so a prepared branch that missed its phase 2 stays in doubt.
  bool bug_no_resolver = false;
};

// Not thread-safe (one simulation thread).
class ParticipantNode final {
 public:
  ParticipantNode(EventLoop* loop, Network* net, NodeId id, CoordinatorRoute coordinator,
                  const ParticipantNodeOptions& options);
  ~ParticipantNode();
  ParticipantNode(const ParticipantNode&) = delete;
  ParticipantNode& operator=(const ParticipantNode&) = delete;

  // Opens the participant (restoring prepared branches; its maintenance
  // starts) and starts the resolver. An error (the database will not open)
  // is a finding.
  absl::Status Start();
  // Power loss: SQLite's unsynced writes go the way SimVfs::Crash says. The
  // process's resolver and participant are destroyed: their timers are
  // cancelled and replies still on their way to them are dropped.
  void Crash();
  // A clean stop (end of run): SQLite closes normally.
  void Stop();
  bool running() const { return participant_ != nullptr; }
  NodeId id() const { return id_; }
  const std::string& name() const { return options_.name; }
  std::string endpoint() const { return options_.name + ".sim:7171"; }
  std::string db_path() const { return options_.dir + "/db"; }

  // --- Requests, served at delivery time -------------------------------
  absl::StatusOr<participant::ExecuteResult> Execute(const std::string& txid,
                                                     const std::vector<SqlStatement>& statements,
                                                     bool prepare, bool named_in_commit = false,
                                                     bool carries_vote_proof = false);
  absl::StatusOr<participant::Vote> Prepare(const std::string& txid, uint64_t branch_token);
  absl::Status Commit(const std::string& txid);
  absl::Status Abort(const std::string& txid);
  absl::StatusOr<participant::Outcome> CommitOnePhase(const std::string& txid,
                                                      uint64_t branch_token);
  // The Batch call: the entries through the core's RunBatch, as the
  // agent's Batch RPC runs them (in order, one WAL sync for all). One
  // answer per entry, in order.
  std::vector<participant::BatchAnswer> Batch(const std::vector<participant::BatchEntry>& entries);

  // An operator's heuristic decision on the prepared branch of `txid`
  // (txctl resolve): see Participant::ResolveHeuristically. Precondition:
  // running().
  absl::StatusOr<participant::HeuristicDecision> ResolveHeuristically(const std::string& txid,
                                                                      participant::Outcome decision,
                                                                      const std::string& reason);

  // Local SQL (setup and the checker's reads). Precondition: running().
  absl::StatusOr<participant::ExecuteResult> Local(const std::vector<SqlStatement>& statements);
  // What is left over, for the liveness check. Precondition: running().
  std::vector<std::string> PreparedTxids();
  size_t branch_count();
  size_t lock_count();
  // Idle branches rolled back because the coordinator answered ABORTED
  // when asked (their Abort was lost), over every process of this node.
  uint64_t asked_rollbacks() const;

 private:
  class Enlister;
  class Observer;
  // The resolver's OutcomeQuery: QueryOutcome at the coordinator, over the
  // network.
  void QueryOutcome(const std::string& txid, participant::OutcomeCallback done);

  EventLoop* const loop_;
  Network* const net_;
  const NodeId id_;
  const CoordinatorRoute coordinator_;
  const ParticipantNodeOptions options_;
  std::unique_ptr<Enlister> enlister_;
  std::unique_ptr<Observer> observer_;

  // The process; reset by Crash. The resolver goes first: it uses the
  // participant.
  std::unique_ptr<participant::Participant> participant_;
  std::unique_ptr<participant::InDoubtResolver> resolver_;
  uint64_t process_ = 0;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_PARTICIPANT_NODE_H_
