// A simulated service running the bank-transfer workload: each transfer is
// one global transaction that moves money between accounts at 1-3
// participants and writes a ledger row per change, so the checker can see
// exactly which branches of which transaction were applied.
#ifndef TXCOORD_SIM_CLIENT_H_
#define TXCOORD_SIM_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/sql_value.h"
#include "coordinator/actions.h"
#include "coordinator/runtime.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

struct WorkloadOptions {
  int accounts = 32;  // per participant, ids 1..accounts
  int64_t initial_balance = 1000;
  double single_branch = 0.15;   // one participant: the one-phase path
  double three_branches = 0.35;  // otherwise two
  double early_prepare = 0.25;   // per branch: its last Execute prepares
  double client_abort = 0.05;    // the client aborts instead of committing
  // Per transaction: its Executes ask agents to answer before their
  // enlistment is acknowledged, and its Commit names the branches.
  double named_branches = 0.5;
  // Per transaction: its txid comes from a block the client reserved
  // (ReserveTxids) instead of a Begin call, so it begins at its first
  // Enlist or Commit. 0 draws nothing (the runs of earlier seeds stay).
  double reserved_txids = 0;
  uint32_t reserve_block = 8;
  // Per transaction that names its branches: its early prepares ask for
  // signed votes (ExecuteOptions::carries_vote_proof) and its Commit
  // carries them, so agents that hold a key send no Enlist for them. 0
  // draws nothing (the runs of earlier seeds stay).
  double signed_votes = 0;
  // Each branch's writes go in two Executes instead of one: first every
  // branch's balance updates, then every branch's ledger rows.
  bool split_execute = false;
  // The service's own work between two of its calls: a random pause.
  absl::Duration max_step_gap = absl::Milliseconds(2);
  int lock_retries = 3;  // an Execute that hit a row lock is retried
  // A Begin that failed is retried this often (10-100 ms apart): enough to
  // outlast a restart, or with etcd a takeover (a lease's TTL).
  int begin_retries = 5;
  absl::Duration tx_timeout = absl::Seconds(5);
  absl::Duration rpc_timeout = absl::Seconds(1);
  // Commit carries the client's deadline to the coordinator, which answers
  // DEADLINE_EXCEEDED when it passes while the commit goes on.
  absl::Duration commit_timeout = absl::Seconds(10);
  // Chance that a Commit has a short deadline instead, up to this: it often
  // passes before the outcome is decided.
  double short_commit_deadline = 0.15;
  absl::Duration max_short_deadline = absl::Milliseconds(30);
  // After DEADLINE_EXCEEDED, the chance the client settles the outcome by
  // asking the coordinator (GetTransaction) rather than calling Commit
  // again; a Commit with a short deadline always asks.
  double settle_by_asking = 0.5;
  int commit_retries = 3;  // after UNAVAILABLE or DEADLINE_EXCEEDED
  // A client that never heard Commit's outcome calls Abort to settle it and
  // takes an OK as ABORTED (what the API promises: Abort fails once COMMIT
  // was logged).
  bool abort_unknown = true;
  absl::Duration max_think = absl::Milliseconds(5);
  // Deliberate bug for the checker's own test: a client takes a Commit's
  // DEADLINE_EXCEEDED for ABORTED instead of settling the outcome.
  bool bug_deadline_means_aborted = false;
};

// The schema and the statements of the workload.
std::vector<SqlStatement> SchemaStatements(const WorkloadOptions& options);

// Not thread-safe (one simulation thread). Everything passed in must outlive
// it. `take_ticket` says whether another transaction may start.
class Client final {
 public:
  Client(EventLoop* loop, Network* net, History* history, NodeId id, int index,
         CoordinatorRoute coordinator, std::vector<ParticipantNode*> participants,
         const WorkloadOptions& options, std::function<bool()> take_ticket);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Start();
  bool done() const { return done_; }

  struct Stats {
    uint64_t begun = 0;
    uint64_t committed = 0;          // told COMMITTED
    uint64_t aborted = 0;            // told ABORTED (by Commit or a successful Abort)
    uint64_t unknown = 0;            // Commit called, outcome never heard
    uint64_t deadline_exceeded = 0;  // Commit answered DEADLINE_EXCEEDED
    uint64_t settled = 0;            // outcome learned by asking the coordinator
    uint64_t abandoned = 0;          // not committed: an Execute or Begin failed, Abort unanswered
    uint64_t one_phase = 0;
    uint64_t early_prepared = 0;  // branches
    uint64_t named = 0;           // transactions whose Commit named their branches
    uint64_t reserved = 0;        // transactions on a reserved txid
    uint64_t signed_votes = 0;    // YES votes an Execute signed, carried by Commit
    uint64_t deferred_votes = 0;  // YES votes sent by Enlist after the Execute answered
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Step {
    ParticipantNode* participant;
    std::vector<SqlStatement> statements;
    bool prepare;
  };
  void Next();
  void Begin(int attempt);
  // A txid from the reserved block, reserving one when it is used up or
  // half its life is gone; Begin if the coordinator cannot reserve.
  void TakeReserved();
  void Started(std::string txid);
  // A successful Execute's branch, named in the Commit if this transaction
  // names its branches (the first token each participant reported).
  void Remember(const std::string& participant, const participant::ExecuteResult& result);
  void Plan();
  void Execute(size_t step, int attempt);
  void Abort(const std::string& why);
  void Commit(int attempt);
  // Asks the coordinator for the outcome of a Commit whose deadline passed,
  // until it is decided; `attempt` counts the questions.
  void Settle(int attempt);
  void Unknown(const absl::Status& why);
  void Finish();

  EventLoop* const loop_;
  Network* const net_;
  History* const history_;
  const NodeId id_;
  const int index_;
  const CoordinatorRoute coordinator_;
  const std::vector<ParticipantNode*> participants_;
  const WorkloadOptions options_;
  const std::function<bool()> take_ticket_;
  bool done_ = false;
  Stats stats_;

  // The reserved block: "<prefix><s>" for s in [next, end), handed out
  // until `until`.
  std::string reserved_prefix_;
  uint64_t reserved_next_ = 0;
  uint64_t reserved_end_ = 0;
  absl::Time reserved_until_ = absl::InfinitePast();

  std::string txid_;
  std::vector<Step> steps_;
  bool name_branches_ = false;
  bool carry_votes_ = false;  // signed votes asked for and carried
  // Participant and token, and a signed vote's endpoint and proof.
  std::vector<txcoord::coordinator::NamedBranch> named_;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_CLIENT_H_
