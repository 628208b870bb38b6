// The simulated coordinator process: the real protocol engine
// (coordinator/engine.h) under simulated adapters. It does what
// coordinator::Runtime does (answer waiting Commit calls on Decided, carry
// out sends, log appends and timers) but on the simulator's thread, with
// the simulated network, clock and log. A crash loses the process; a start
// takes a new epoch and recovers from the log like the daemon.
#ifndef TXCOORD_SIM_COORDINATOR_NODE_H_
#define TXCOORD_SIM_COORDINATOR_NODE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/engine.h"
#include "sim/event_loop.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/sim_log.h"

namespace txcoord::sim {

class ParticipantNode;

struct CoordinatorNodeOptions {
  coordinator::EngineOptions engine;  // epoch and random_seed are set per start
  absl::Duration phase2_rpc_timeout = absl::Seconds(1);
  absl::Duration abort_rpc_timeout = absl::Milliseconds(500);
  SimLogOptions log;
  // Deliberate bug for the checker's own test: answer COMMITTED as soon as
  // the COMMIT record is appended, before it is durable.
  bool bug_reply_before_durable = false;
};

struct CommitReply {
  bool committed = false;
  std::string reason;
};

// Not thread-safe (one simulation thread). Everything passed in must
// outlive it.
class CoordinatorNode final {
 public:
  CoordinatorNode(EventLoop* loop, Network* net, History* history, NodeId id,
                  const CoordinatorNodeOptions& options);
  ~CoordinatorNode();
  CoordinatorNode(const CoordinatorNode&) = delete;
  CoordinatorNode& operator=(const CoordinatorNode&) = delete;

  // Where the engine's BranchRef endpoints lead.
  void AddParticipant(const std::string& endpoint, ParticipantNode* node);
  // Runs when the log fails: the process must stop and be restarted.
  void set_on_log_failure(std::function<void()> fn) { on_log_failure_ = std::move(fn); }
  // Chance that one fdatasync fails, from now on (this and later processes).
  void set_sync_failure(double p);

  // Starts a new process: next epoch, replay the log, re-drive unfinished
  // commits. An error (the log refuses to open) is a finding.
  absl::Status Start();
  void Crash();
  bool running() const { return engine_ != nullptr; }
  NodeId id() const { return id_; }
  uint64_t epoch() const { return epoch_; }
  size_t open_transactions() const { return engine_ ? engine_->open_transactions() : 0; }
  const SimLogDisk& disk() const { return disk_; }
  // A line per open transaction, for a liveness report.
  std::vector<std::string> DescribeOpen() const;
  // What this coordinator answers a client asking about `txid` now (as
  // GetTransaction does): true COMMITTED or COMMITTING, false ABORTED; an
  // error for an undecided or unknown one. Precondition: running().
  absl::StatusOr<bool> OutcomeOf(const std::string& txid) const;

  // --- Requests, served at delivery time -------------------------------
  absl::StatusOr<coordinator::BeginResult> Begin(absl::Duration timeout);
  absl::Status Enlist(const std::string& txid, const coordinator::BranchRef& branch,
                      bool prepared);
  void Commit(const std::string& txid, std::function<void(absl::StatusOr<CommitReply>)> reply);
  absl::Status Abort(const std::string& txid);
  absl::StatusOr<coordinator::Outcome> QueryOutcome(const std::string& txid,
                                                    const std::string& participant);

 private:
  using Reply = std::function<void(absl::StatusOr<CommitReply>)>;
  void Run(coordinator::Actions actions);
  void Answer(const std::string& txid, const absl::StatusOr<CommitReply>& reply);
  ParticipantNode* Target(const coordinator::BranchRef& branch);
  std::vector<wal::Record> Checkpoint();
  absl::Status CheckAccepting() const;

  EventLoop* const loop_;
  Network* const net_;
  History* const history_;
  const NodeId id_;
  CoordinatorNodeOptions options_;
  std::map<std::string, ParticipantNode*> endpoints_;
  std::function<void()> on_log_failure_;

  SimLogDisk disk_;   // survives crashes
  uint64_t epoch_ = 0;  // the data directory's EPOCH file: survives crashes

  // The process; reset by Crash.
  std::unique_ptr<coordinator::Engine> engine_;
  std::unique_ptr<SimLog> log_;
  std::map<std::string, std::vector<Reply>> waiters_;
  uint64_t process_ = 0;  // bumped per start: stale timers find a new number
  // The EXPIRED mark a start logs (when the log had none) is durable.
  bool expired_logged_ = true;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_COORDINATOR_NODE_H_
