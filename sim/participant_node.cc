#include "sim/participant_node.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "participant/participant_observer.h"
#include "participant/vote_key_holder.h"
#include "sim/coordinator_node.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {

// The participant's synchronous Enlist call to the coordinator, with the
// network's faults applied to its request and its reply.
class ParticipantNode::Enlister final : public participant::Enlister {
 public:
  explicit Enlister(ParticipantNode* node) : node_(node), keys_(node->loop_) {}

  absl::Status Enlist(const std::string& txid, uint64_t token, bool prepared) override {
    ParticipantNode& n = *node_;
    Network& net = *n.net_;
    CoordinatorNode* coord = n.coordinator_();
    const std::string& to = coord->name();
    const std::string what =
        absl::StrCat("Enlist ", txid, " ", n.name(), prepared ? " (prepared)" : "");
    if (!net.up(coord->id())) {
      n.loop_->Trace(absl::StrCat(n.name(), " -> ", to, " REFUSED (down) ", what));
      return absl::UnavailableError("coordinator unavailable: connection refused");
    }
    const NetworkFaults& faults = net.faults();
    if (net.isolated(n.id_) || net.isolated(coord->id()) || n.loop_->Chance(faults.loss)) {
      n.loop_->Trace(absl::StrCat(n.name(), " -> ", to, " LOST ", what));
      return absl::DeadlineExceededError("Enlist: deadline exceeded");
    }
    const coordinator::BranchRef branch{n.name(), n.endpoint(), token};
    // A paused coordinator gets it when it resumes.
    auto deliver_later = [&n, coord, txid, branch, prepared, what](absl::Duration delay) {
      const uint64_t target = n.net_->incarnation(coord->id());
      n.loop_->After(delay, [&n, coord, txid, branch, prepared, what, target] {
        n.net_->RunAt(coord->id(), [&n, coord, txid, branch, prepared, what, target] {
          if (!n.net_->up(coord->id()) || n.net_->incarnation(coord->id()) != target) return;
          n.loop_->Trace(absl::StrCat(n.name(), " -> ", coord->name(), " LATE ", what));
          coord->Enlist(txid, branch, prepared).IgnoreError();
        });
      });
    };
    if (n.loop_->Chance(faults.slow) || net.paused(coord->id())) {
      // Still in flight when the caller's deadline passes: it gets an error,
      // and the coordinator gets the request later.
      deliver_later(n.loop_->UniformDuration(absl::Milliseconds(1), faults.slow_max));
      return absl::DeadlineExceededError("Enlist: deadline exceeded (request still in flight)");
    }
    absl::Status status = coord->Enlist(txid, branch, prepared);
    // The answer's key, as the coordinator's reply carries it.
    const std::string key = status.ok() ? coord->VoteKey(n.name()) : "";
    if (n.loop_->Chance(faults.duplicate)) {
      deliver_later(n.loop_->UniformDuration(absl::Milliseconds(1), faults.slow_max));
    }
    if (n.loop_->Chance(faults.loss)) {
      n.loop_->Trace(absl::StrCat(to, " -> ", n.name(), " LOST reply to ", what));
      return absl::DeadlineExceededError("Enlist: deadline exceeded");
    }
    keys_.Note(txid, key);
    return status;
  }

  // An RPC on the simulated network, answered on the event loop later (or
  // never: the network's timeout then answers DEADLINE_EXCEEDED).
  void EnlistAsync(const std::string& txid, uint64_t token, bool prepared,
                   std::function<void(absl::Status)> done) override {
    ParticipantNode& n = *node_;
    CoordinatorNode* coord = n.coordinator_();
    const coordinator::BranchRef branch{n.name(), n.endpoint(), token};
    // The reply carries the participant's vote key when OK.
    n.net_->Call<absl::StatusOr<std::string>>(
        n.id_, coord->id(),
        absl::StrCat("Enlist ", txid, " ", n.name(), prepared ? " (prepared)" : "", " (async)"),
        n.options_.query_timeout, /*idempotent=*/true,
        [coord, txid, branch, prepared](std::function<void(absl::StatusOr<std::string>)> reply) {
          absl::Status status = coord->Enlist(txid, branch, prepared, /*named_in_commit=*/true);
          if (!status.ok()) return reply(status);
          reply(coord->VoteKey(branch.participant));
        },
        [this, txid, done = std::move(done)](absl::StatusOr<std::string> key) {
          if (key.ok()) keys_.Note(txid, *key);
          done(key.status());
        });
  }

  std::optional<VoteSigning> VoteSigningFor(const std::string& txid) override {
    return keys_.For(txid, node_->endpoint());
  }

 private:
  ParticipantNode* const node_;
  participant::VoteKeyHolder keys_;
};

// Counts what the run's report shows of the participant's own work.
class ParticipantNode::Observer final : public participant::ParticipantObserver {
 public:
  void OnExecute(absl::Duration, const absl::Status&) override {}
  void OnLockTimeout() override {}
  void OnPrepare(participant::Vote) override {}
  void OnCommit() override {}
  void OnAbort(participant::RollbackReason reason) override {
    if (reason == participant::RollbackReason::kAskedAborted) ++asked_rollbacks;
  }
  uint64_t asked_rollbacks = 0;  // the simulator has one thread
};

ParticipantNode::ParticipantNode(EventLoop* loop, Network* net, NodeId id,
                                 CoordinatorRoute coordinator,
                                 const ParticipantNodeOptions& options)
    : loop_(loop),
      net_(net),
      id_(id),
      coordinator_(std::move(coordinator)),
      options_(options),
      enlister_(std::make_unique<Enlister>(this)),
      observer_(std::make_unique<Observer>()) {}

ParticipantNode::~ParticipantNode() = default;

uint64_t ParticipantNode::asked_rollbacks() const { return observer_->asked_rollbacks; }

absl::Status ParticipantNode::Start() {
  ++process_;
  participant::ParticipantOptions po;
  po.db_path = db_path();
  po.name = options_.name;
  // Simulated time for everything it stamps, and its maintenance (the
  // idle-branch reaper) on the simulator's events.
  po.clock = loop_;
  po.scheduler = loop_;
  po.branch_idle_timeout = options_.idle_timeout;
  po.vote_deferral = options_.deferred_votes > 0 && loop_->Chance(options_.deferred_votes)
                         ? participant::VoteDeferral::kAlways
                         : participant::VoteDeferral::kNever;
  po.observer = observer_.get();
  // Nothing may block the simulator's thread: a lock conflict fails at once.
  po.default_lock_timeout = absl::ZeroDuration();
  // Resending an unanswered vote would sleep on wall-clock time; the
  // Execute fails with ABORTED at once instead (the client then aborts).
  po.vote_retry_time = absl::ZeroDuration();
  // Deterministic, and different for every node and every restart.
  po.branch_token_seed = (static_cast<uint64_t>(id_) << 48) | (process_ << 24) | 1;
  absl::StatusOr<std::unique_ptr<participant::Participant>> opened =
      participant::Participant::Open(po, enlister_.get());
  if (!opened.ok()) return opened.status();
  participant_ = *std::move(opened);
  net_->Restart(id_);
  loop_->Trace(
      absl::StrCat(name(), " START, ", PreparedTxids().size(), " prepared branch(es) in doubt"));
  if (!options_.bug_no_resolver) {
    resolver_ = std::make_unique<participant::InDoubtResolver>(
        participant_.get(), loop_,
        [this](const std::string& txid, participant::OutcomeCallback done) {
          QueryOutcome(txid, std::move(done));
        },
        options_.resolver);
    resolver_->Start();
  }
  return absl::OkStatus();
}

void ParticipantNode::Crash() {
  if (!running()) return;
  loop_->Trace(absl::StrCat(name(), " CRASH"));
  net_->Crash(id_);
  SimVfs& vfs = SimVfs::Install();
  vfs.Freeze(options_.dir);
  resolver_.reset();
  participant_.reset();
  vfs.Crash(options_.dir, loop_->rng());
  ++process_;
}

void ParticipantNode::Stop() {
  resolver_.reset();
  participant_.reset();
  ++process_;
}

std::vector<std::string> ParticipantNode::PreparedTxids() {
  std::vector<std::string> txids;
  for (const participant::PreparedBranch& b : participant_->ListPrepared()) {
    txids.push_back(b.txid);
  }
  // By name: prepare times of branches prepared at one simulated instant tie.
  std::sort(txids.begin(), txids.end());
  return txids;
}

size_t ParticipantNode::branch_count() { return participant_->BranchCount(); }
size_t ParticipantNode::lock_count() { return participant_->LockCount(); }

absl::StatusOr<participant::ExecuteResult> ParticipantNode::Execute(
    const std::string& txid, const std::vector<SqlStatement>& statements, bool prepare,
    bool named_in_commit, bool carries_vote_proof) {
  participant::ExecuteOptions options;
  options.prepare = prepare;
  options.named_in_commit = named_in_commit;
  options.carries_vote_proof = carries_vote_proof;
  absl::StatusOr<participant::ExecuteResult> result =
      participant_->Execute(txid, statements, std::move(options));
  loop_->Trace(absl::StrCat(name(), " Execute ", txid, prepare ? " +prepare" : "",
                            named_in_commit ? " +named" : "",
                            result.ok() && !result->vote_proof.empty() ? " +signed" : "", ": ",
                            result.ok() ? "OK" : result.status().ToString()));
  return result;
}

absl::StatusOr<participant::Vote> ParticipantNode::Prepare(const std::string& txid,
                                                           uint64_t branch_token) {
  absl::StatusOr<participant::Vote> vote = participant_->Prepare(txid, branch_token);
  const char* word = !vote.ok()                              ? "error"
                     : *vote == participant::Vote::kYes      ? "YES"
                     : *vote == participant::Vote::kReadOnly ? "READ_ONLY"
                                                             : "NO";
  loop_->Trace(absl::StrCat(name(), " Prepare ", txid, ": votes ", word));
  return vote;
}

absl::Status ParticipantNode::Commit(const std::string& txid) {
  absl::Status status = participant_->Commit(txid);
  loop_->Trace(absl::StrCat(name(), " Commit ", txid, ": ", status.ToString()));
  return status;
}

absl::Status ParticipantNode::Abort(const std::string& txid) {
  absl::Status status = participant_->Abort(txid);
  loop_->Trace(absl::StrCat(name(), " Abort ", txid, ": ", status.ToString()));
  return status;
}

absl::StatusOr<participant::Outcome> ParticipantNode::CommitOnePhase(const std::string& txid,
                                                                     uint64_t branch_token) {
  absl::StatusOr<participant::Outcome> outcome = participant_->CommitOnePhase(txid, branch_token);
  loop_->Trace(absl::StrCat(name(), " CommitOnePhase ", txid, ": ",
                            !outcome.ok() ? outcome.status().ToString()
                            : *outcome == participant::Outcome::kCommitted ? "COMMITTED"
                                                                           : "ABORTED"));
  return outcome;
}

absl::StatusOr<participant::HeuristicDecision> ParticipantNode::ResolveHeuristically(
    const std::string& txid, participant::Outcome decision, const std::string& reason) {
  loop_->Trace(absl::StrCat(
      name(), " operator resolves ", txid,
      decision == participant::Outcome::kCommitted ? " COMMITTED" : " ABORTED", " (heuristic)"));
  return participant_->ResolveHeuristically(txid, decision, reason);
}

std::vector<participant::BatchAnswer> ParticipantNode::Batch(
    const std::vector<participant::BatchEntry>& entries) {
  std::vector<participant::BatchAnswer> answers = participant_->RunBatch(entries);
  std::string line = absl::StrCat(name(), " Batch of ", entries.size(), ":");
  for (size_t i = 0; i < entries.size() && i < answers.size(); ++i) {
    const participant::BatchEntry& entry = entries[i];
    const participant::BatchAnswer& answer = answers[i];
    const char* op = entry.op == participant::BranchOp::kPrepare  ? "Prepare"
                     : entry.op == participant::BranchOp::kCommit ? "Commit"
                                                                  : "Abort";
    const std::string result = !answer.status.ok() ? absl::StatusCodeToString(answer.status.code())
                               : entry.op != participant::BranchOp::kPrepare ? "OK"
                               : answer.vote == participant::Vote::kYes      ? "YES"
                               : answer.vote == participant::Vote::kReadOnly ? "READ_ONLY"
                                                                             : "NO";
    absl::StrAppend(&line, i == 0 ? " " : ", ", op, " ", entry.txid, " ", result);
  }
  loop_->Trace(line);
  return answers;
}

absl::StatusOr<participant::ExecuteResult> ParticipantNode::Local(
    const std::vector<SqlStatement>& statements) {
  return participant_->Execute("", statements, false, absl::ZeroDuration());
}

void ParticipantNode::QueryOutcome(const std::string& txid, participant::OutcomeCallback done) {
  CoordinatorNode* coord = coordinator_();
  const std::string participant = name();
  const uint64_t process = process_;
  net_->Call<absl::StatusOr<coordinator::Outcome>>(
      id_, coord->id(), absl::StrCat("QueryOutcome ", txid, " ", participant),
      options_.query_timeout, true,
      [coord, txid, participant](auto reply) { reply(coord->QueryOutcome(txid, participant)); },
      [this, txid, process, done = std::move(done)](absl::StatusOr<coordinator::Outcome> outcome) {
        if (!outcome.ok()) {
          done(outcome.status());
          return;
        }
        using participant::RemoteOutcome;
        RemoteOutcome remote = RemoteOutcome::kPending;
        if (*outcome == coordinator::Outcome::kCommitted) remote = RemoteOutcome::kCommitted;
        if (*outcome == coordinator::Outcome::kAborted) remote = RemoteOutcome::kAborted;
        // A stopped process's resolver drops the answer: no trace then.
        if (remote != RemoteOutcome::kPending && process == process_) {
          loop_->Trace(absl::StrCat(name(), " in-doubt ", txid, ": coordinator says ",
                                    remote == RemoteOutcome::kCommitted ? "COMMITTED" : "ABORTED"));
        }
        done(remote);
      });
}

}  // namespace txcoord::sim
