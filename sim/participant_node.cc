#include "sim/participant_node.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "sim/coordinator_node.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {

// The participant's synchronous Enlist call to the coordinator, with the
// network's faults applied to its request and its reply.
class ParticipantNode::Enlister final : public participant::Enlister {
 public:
  explicit Enlister(ParticipantNode* node) : node_(node) {}

  absl::Status Enlist(const std::string& txid, uint64_t token, bool prepared) override {
    ParticipantNode& n = *node_;
    Network& net = *n.net_;
    CoordinatorNode* coord = n.coordinator_;
    const std::string what = absl::StrCat("Enlist ", txid, " ", n.name(), prepared ? " (prepared)" : "");
    if (!net.up(coord->id())) {
      n.loop_->Trace(absl::StrCat(n.name(), " -> coord REFUSED (down) ", what));
      return absl::UnavailableError("coordinator unavailable: connection refused");
    }
    const NetworkFaults& faults = net.faults();
    if (net.isolated(n.id_) || net.isolated(coord->id()) || n.loop_->Chance(faults.loss)) {
      n.loop_->Trace(absl::StrCat(n.name(), " -> coord LOST ", what));
      return absl::DeadlineExceededError("Enlist: deadline exceeded");
    }
    const coordinator::BranchRef branch{n.name(), n.endpoint(), token};
    auto deliver_later = [&n, coord, txid, branch, prepared, what](absl::Duration delay) {
      const uint64_t target = n.net_->incarnation(coord->id());
      n.loop_->After(delay, [&n, coord, txid, branch, prepared, what, target] {
        if (!n.net_->up(coord->id()) || n.net_->incarnation(coord->id()) != target) return;
        n.loop_->Trace(absl::StrCat(n.name(), " -> coord LATE ", what));
        coord->Enlist(txid, branch, prepared).IgnoreError();
      });
    };
    if (n.loop_->Chance(faults.slow)) {
      // Still in flight when the caller's deadline passes: it gets an error,
      // and the coordinator gets the request later.
      deliver_later(n.loop_->UniformDuration(absl::Milliseconds(1), faults.slow_max));
      return absl::DeadlineExceededError("Enlist: deadline exceeded (request still in flight)");
    }
    absl::Status status = coord->Enlist(txid, branch, prepared);
    if (n.loop_->Chance(faults.duplicate)) {
      deliver_later(n.loop_->UniformDuration(absl::Milliseconds(1), faults.slow_max));
    }
    if (n.loop_->Chance(faults.loss)) {
      n.loop_->Trace(absl::StrCat("coord -> ", n.name(), " LOST reply to ", what));
      return absl::DeadlineExceededError("Enlist: deadline exceeded");
    }
    return status;
  }

 private:
  ParticipantNode* const node_;
};

ParticipantNode::ParticipantNode(EventLoop* loop, Network* net, NodeId id,
                                 CoordinatorNode* coordinator,
                                 const ParticipantNodeOptions& options)
    : loop_(loop),
      net_(net),
      id_(id),
      coordinator_(coordinator),
      options_(options),
      enlister_(std::make_unique<Enlister>(this)) {}

ParticipantNode::~ParticipantNode() = default;

absl::Status ParticipantNode::Start() {
  ++process_;
  participant::ParticipantOptions po;
  po.db_path = db_path();
  po.name = options_.name;
  // Nothing may block the simulator's thread: a lock conflict fails at once.
  po.default_lock_timeout = absl::ZeroDuration();
  // The reaper thread would run on wall-clock time: ReapTick replaces it.
  po.branch_idle_timeout = absl::ZeroDuration();
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
  recovered_.clear();
  first_seen_.clear();
  backoff_.clear();
  last_used_.clear();
  for (const std::string& txid : PreparedTxids()) recovered_.insert(txid);
  loop_->Trace(absl::StrCat(name(), " START, ", recovered_.size(), " prepared branch(es) in doubt"));
  const uint64_t process = process_;
  if (!options_.bug_no_resolver) {
    loop_->After(options_.resolver_poll, [this, process] { ResolveTick(process); });
  }
  loop_->After(options_.idle_timeout / 4, [this, process] { ReapTick(process); });
  return absl::OkStatus();
}

void ParticipantNode::Crash() {
  if (!running()) return;
  loop_->Trace(absl::StrCat(name(), " CRASH"));
  net_->Crash(id_);
  SimVfs& vfs = SimVfs::Install();
  vfs.Freeze(options_.dir);
  participant_.reset();
  vfs.Crash(options_.dir, loop_->rng());
  ++process_;
}

void ParticipantNode::Stop() {
  participant_.reset();
  ++process_;
}

std::vector<std::string> ParticipantNode::PreparedTxids() {
  std::vector<std::string> txids;
  for (const participant::PreparedBranch& b : participant_->ListPrepared()) {
    txids.push_back(b.txid);
  }
  // ListPrepared orders by wall-clock prepare time; the run must not.
  std::sort(txids.begin(), txids.end());
  return txids;
}

size_t ParticipantNode::branch_count() { return participant_->BranchCount(); }
size_t ParticipantNode::lock_count() { return participant_->LockCount(); }

absl::StatusOr<participant::ExecuteResult> ParticipantNode::Execute(
    const std::string& txid, const std::vector<SqlStatement>& statements, bool prepare) {
  absl::StatusOr<participant::ExecuteResult> result =
      participant_->Execute(txid, statements, prepare, absl::ZeroDuration());
  last_used_[txid] = loop_->now();
  loop_->Trace(absl::StrCat(name(), " Execute ", txid, prepare ? " +prepare" : "", ": ",
                            result.ok() ? "OK" : result.status().ToString()));
  return result;
}

absl::StatusOr<participant::Vote> ParticipantNode::Prepare(const std::string& txid,
                                                          uint64_t branch_token) {
  absl::StatusOr<participant::Vote> vote = participant_->Prepare(txid, branch_token);
  const char* word = !vote.ok()                               ? "error"
                     : *vote == participant::Vote::kYes      ? "YES"
                     : *vote == participant::Vote::kReadOnly ? "READ_ONLY"
                                                              : "NO";
  loop_->Trace(absl::StrCat(name(), " Prepare ", txid, ": votes ", word));
  return vote;
}

absl::Status ParticipantNode::Commit(const std::string& txid) {
  last_used_.erase(txid);  // decided: nothing left for the reaper
  absl::Status status = participant_->Commit(txid);
  loop_->Trace(absl::StrCat(name(), " Commit ", txid, ": ", status.ToString()));
  return status;
}

absl::Status ParticipantNode::Abort(const std::string& txid) {
  last_used_.erase(txid);
  absl::Status status = participant_->Abort(txid);
  loop_->Trace(absl::StrCat(name(), " Abort ", txid, ": ", status.ToString()));
  return status;
}

absl::StatusOr<participant::Outcome> ParticipantNode::CommitOnePhase(const std::string& txid,
                                                                    uint64_t branch_token) {
  last_used_.erase(txid);
  absl::StatusOr<participant::Outcome> outcome =
      participant_->CommitOnePhase(txid, branch_token);
  loop_->Trace(absl::StrCat(name(), " CommitOnePhase ", txid, ": ",
                            !outcome.ok() ? outcome.status().ToString()
                            : *outcome == participant::Outcome::kCommitted ? "COMMITTED"
                                                                            : "ABORTED"));
  return outcome;
}

absl::StatusOr<participant::HeuristicDecision> ParticipantNode::ResolveHeuristically(
    const std::string& txid, participant::Outcome decision, const std::string& reason) {
  loop_->Trace(absl::StrCat(name(), " operator resolves ", txid,
                            decision == participant::Outcome::kCommitted ? " COMMITTED" : " ABORTED",
                            " (heuristic)"));
  return participant_->ResolveHeuristically(txid, decision, reason);
}

std::vector<participant::BatchAnswer> ParticipantNode::Batch(
    const std::vector<participant::BatchEntry>& entries) {
  for (const participant::BatchEntry& entry : entries) {
    // Decided: nothing left for the reaper, as in Commit and Abort.
    if (entry.op != participant::BranchOp::kPrepare) last_used_.erase(entry.txid);
  }
  std::vector<participant::BatchAnswer> answers = participant_->RunBatch(entries);
  std::string line = absl::StrCat(name(), " Batch of ", entries.size(), ":");
  for (size_t i = 0; i < entries.size() && i < answers.size(); ++i) {
    const participant::BatchEntry& entry = entries[i];
    const participant::BatchAnswer& answer = answers[i];
    const char* op = entry.op == participant::BranchOp::kPrepare  ? "Prepare"
                     : entry.op == participant::BranchOp::kCommit ? "Commit"
                                                                   : "Abort";
    const std::string result =
        !answer.status.ok()                           ? absl::StatusCodeToString(answer.status.code())
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

void ParticipantNode::ResolveTick(uint64_t process) {
  if (process != process_ || !running()) return;
  const absl::Time now = loop_->now();
  std::set<std::string> seen;
  for (const std::string& txid : PreparedTxids()) {
    seen.insert(txid);
    const absl::Time first = first_seen_.try_emplace(txid, now).first->second;
    // Recovered branches are asked at once; fresh ones get time for the
    // coordinator's own phase 2.
    if (recovered_.count(txid) == 0 && now - first < options_.resolver_min_age) continue;
    auto [it, inserted] =
        backoff_.try_emplace(txid, Backoff{now, options_.resolver_backoff_initial, false});
    if (it->second.asking || it->second.next > now) continue;
    Query(txid);
  }
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    it = seen.count(it->first) == 0 && !it->second.asking ? backoff_.erase(it) : std::next(it);
  }
  loop_->After(options_.resolver_poll, [this, process] { ResolveTick(process); });
}

void ParticipantNode::Query(const std::string& txid) {
  backoff_[txid].asking = true;
  CoordinatorNode* coord = coordinator_;
  const std::string participant = name();
  net_->Call<absl::StatusOr<coordinator::Outcome>>(
      id_, coord->id(), absl::StrCat("QueryOutcome ", txid, " ", participant),
      options_.query_timeout, true,
      [coord, txid, participant](auto reply) { reply(coord->QueryOutcome(txid, participant)); },
      [this, txid](absl::StatusOr<coordinator::Outcome> outcome) {
        Backoff& b = backoff_[txid];
        b.asking = false;
        absl::Status applied = absl::UnknownError("no outcome yet");
        if (outcome.ok() && *outcome == coordinator::Outcome::kCommitted) {
          loop_->Trace(absl::StrCat(name(), " in-doubt ", txid, ": coordinator says COMMITTED"));
          applied = Commit(txid);
        } else if (outcome.ok() && *outcome == coordinator::Outcome::kAborted) {
          loop_->Trace(absl::StrCat(name(), " in-doubt ", txid, ": coordinator says ABORTED"));
          applied = Abort(txid);
        }
        if (applied.ok()) {
          backoff_.erase(txid);
          return;
        }
        b.next = loop_->now() + b.delay;
        b.delay = std::min(b.delay * 2, options_.resolver_backoff_max);
      });
}

void ParticipantNode::ReapTick(uint64_t process) {
  if (process != process_ || !running()) return;
  const absl::Time now = loop_->now();
  std::vector<std::string> prepared = PreparedTxids();
  for (auto it = last_used_.begin(); it != last_used_.end();) {
    if (now - it->second <= options_.idle_timeout) {
      ++it;
      continue;
    }
    // Only unprepared branches are the reaper's; prepared ones wait for
    // their outcome. Abort of an unprepared branch is what the reaper does.
    if (!std::binary_search(prepared.begin(), prepared.end(), it->first)) {
      if (participant_->BranchCount() > prepared.size()) {
        absl::Status s = participant_->Abort(it->first);
        loop_->Trace(absl::StrCat(name(), " reaper: rolled back idle branch ", it->first, ": ",
                                  s.ToString()));
      }
    }
    it = last_used_.erase(it);
  }
  loop_->After(options_.idle_timeout / 4, [this, process] { ReapTick(process); });
}

}  // namespace txcoord::sim
