// The simulated coordinator process: the daemon's own coordinator::Runtime
// (and through it the protocol engine) wired to the simulator: the event
// loop as its Scheduler, a decision log, and the daemon's
// BatchingParticipantClient over a transport whose calls cross the
// simulated network to the ParticipantNodes. The log is SimWal on this
// node's own disk, or, with an etcd model, the daemon's EtcdDecisionLog on
// the etcd shared by every coordinator node of the space: a start then
// campaigns for the space (coordinator/ha/space_owner.h) and serves only
// once it owns it, keeping it with the daemon's OwnershipKeeper. What this
// file adds is the fault model: a crash destroys the process (runtime,
// timers, log, calls in flight, its etcd connection) and keeps only the
// log's disk; a pause stops it with everything in memory; a start takes a
// new epoch and recovers from the log like the daemon.
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
#include "cluster/etcd.h"
#include "coordinator/batching_participant_client.h"
#include "coordinator/engine.h"
#include "coordinator/recovery_state.h"
#include "coordinator/runtime.h"
#include "sim/etcd_connection.h"
#include "sim/event_loop.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/sim_participant_transport.h"
#include "sim/sim_wal.h"

namespace txcoord::sim {

class ParticipantNode;

struct CoordinatorNodeOptions {
  coordinator::EngineOptions engine;  // epoch and random_seed are set per start
  absl::Duration phase2_rpc_timeout = absl::Seconds(1);
  absl::Duration abort_rpc_timeout = absl::Milliseconds(500);
  SimWalOptions log;  // bug_ack_before_sync: COMMITTED before COMMIT is durable
  // Non-null: the decision log is on this etcd (shared by the space's
  // coordinator nodes; it must outlive them) instead of SimWal.
  cluster::Etcd* etcd = nullptr;
  std::string etcd_prefix = "/txsim";
  absl::Duration lease_ttl = absl::Seconds(1);
  absl::Duration campaign_poll = absl::Milliseconds(100);  // a standby's look at the owner key
  // Chance a write to etcd is applied but its answer lost (the caller hears
  // UNAVAILABLE, or the answer of the write sent again).
  double etcd_lost_answer = 0;
  // Deliberate bug for the checker's own test: the log writes without the
  // ownership fence (EtcdLogOptions::unfenced_for_tests).
  bool bug_unfenced_log = false;
};

// Not thread-safe (one simulation thread). Everything passed in must
// outlive it. The requests below are served at delivery time, by the
// running process; a request that reaches no process (the network let it
// through just as the node crashed) answers UNAVAILABLE.
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
  // With etcd: runs when this process has taken the space (it serves now).
  void set_on_owner(std::function<void()> fn) { on_owner_ = std::move(fn); }
  // With etcd: runs after the process stopped itself because it lost the
  // space (etcd refused its fenced write or its keeper's probe) or its log
  // failed for good: a supervisor restarts it, as a standby.
  void set_on_stopped(std::function<void()> fn) { on_stopped_ = std::move(fn); }
  // Chance that one fdatasync fails, from now on (this and later processes).
  void set_sync_failure(double p);

  // Starts a new process: next epoch, replay the log, re-drive unfinished
  // commits. With etcd, it first campaigns (a standby until it owns the
  // space) and the epoch is the space's. An error (the log refuses to open)
  // is a finding.
  absl::Status Start();
  // kill -9: nothing of the process runs again, its etcd calls fail from
  // now on (its lease is left to expire).
  void Crash();
  // Stops the process (SIGSTOP) with its memory and timers as they are;
  // Resume lets it go on where it was. Precondition: running().
  void Pause();
  void Resume();
  // With etcd: this process alone cannot reach etcd for `duration` (every
  // call UNAVAILABLE) while everything else can, and it goes on serving.
  void CutOffFromEtcd(absl::Duration duration);
  bool running() const { return process_ != nullptr; }
  // Running and serving the space: with etcd, only after taking it.
  bool serving() const;
  bool paused() const;
  NodeId id() const { return id_; }
  const std::string& name() const { return name_; }
  uint64_t epoch() const { return epoch_; }
  size_t open_transactions() const;
  const SimWalDisk& disk() const { return disk_; }
  // A line per open transaction, for a liveness report.
  std::vector<std::string> DescribeOpen() const;
  // What this coordinator answers a client asking about `txid` now (as
  // GetTransaction does): true COMMITTED or COMMITTING, false ABORTED;
  // FAILED_PRECONDITION for an undecided one, NOT_FOUND or OUT_OF_RANGE for
  // one it cannot tell. Precondition: running().
  absl::StatusOr<bool> OutcomeOf(const std::string& txid) const;

  // --- Client and participant requests (CoordinatorService) -------------
  absl::StatusOr<coordinator::BeginResult> Begin(absl::Duration timeout);
  absl::StatusOr<coordinator::ReserveResult> Reserve(uint32_t count, absl::Duration timeout);
  absl::Status Enlist(const std::string& txid, const coordinator::BranchRef& branch, bool prepared,
                      bool named_in_commit = false);
  // The participant's vote key, as an OK Enlist answer carries it.
  std::string VoteKey(const std::string& participant);
  void Commit(const std::string& txid, std::vector<coordinator::NamedBranch> named,
              absl::Time deadline, coordinator::Runtime::CommitCallback reply);
  absl::Status Abort(const std::string& txid,
                     const std::vector<coordinator::NamedBranch>& named = {});
  absl::StatusOr<coordinator::Outcome> QueryOutcome(const std::string& txid,
                                                    const std::string& participant);

  // --- Operator requests (CoordinatorAdmin) -------------------------------
  absl::StatusOr<coordinator::ListPage> List(const coordinator::ListFilter& filter);
  absl::StatusOr<coordinator::AdminResult> RetryPhase2(const std::string& txid);
  absl::StatusOr<coordinator::AdminResult> ForceAbort(const std::string& txid,
                                                      const std::string& reason);
  void MarkBranchDone(const std::string& txid, const std::string& participant,
                      const std::string& note, coordinator::Runtime::AdminCallback done);

 private:
  class ProcessScheduler;
  struct Process;

  absl::Status StartWithWal();
  void StartWithEtcd();
  // A standby's round: renew its lease, try to take the space; again later.
  void Campaign(uint64_t incarnation);
  // Loads the space's log from etcd and starts serving.
  void RecoverFromEtcd(uint64_t incarnation);
  void Serve(const coordinator::RecoveryState& recovery, const std::string& how);
  coordinator::RuntimeOptions MakeRuntimeOptions();
  // The process lost the space, or its log failed: it stops (fail-stop)
  // at the next event.
  void Lost(uint64_t incarnation, const absl::Status& why);
  absl::Status NotServing() const;

  EventLoop* const loop_;
  Network* const net_;
  History* const history_;
  const NodeId id_;
  const std::string name_;
  CoordinatorNodeOptions options_;
  std::map<std::string, ParticipantNode*> endpoints_;
  std::function<void()> on_log_failure_;
  std::function<void()> on_owner_;
  std::function<void()> on_stopped_;

  SimWalDisk disk_;  // survives crashes
  // The data directory's EPOCH file, or with etcd the epoch this node last
  // took the space at: survives crashes.
  uint64_t epoch_ = 0;
  // Bumped per start, so that a callback can tell its process is gone.
  uint64_t incarnation_ = 0;
  std::unique_ptr<Process> process_;  // null while down
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_COORDINATOR_NODE_H_
