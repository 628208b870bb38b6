#include "sim/coordinator_node.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/records.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

using coordinator::Action;
using coordinator::Actions;
using coordinator::BranchRef;
using coordinator::LogCommit;

namespace {

coordinator::Vote ToEngine(participant::Vote vote) {
  switch (vote) {
    case participant::Vote::kYes: return coordinator::Vote::kYes;
    case participant::Vote::kNo: return coordinator::Vote::kNo;
    case participant::Vote::kReadOnly: return coordinator::Vote::kReadOnly;
  }
  return coordinator::Vote::kNo;
}

std::string StatusText(const absl::Status& s) {
  return s.ok() ? "OK" : std::string(absl::StatusCodeToString(s.code()));
}

}  // namespace

CoordinatorNode::CoordinatorNode(EventLoop* loop, Network* net, History* history, NodeId id,
                                 const CoordinatorNodeOptions& options)
    : loop_(loop), net_(net), history_(history), id_(id), options_(options) {}

CoordinatorNode::~CoordinatorNode() = default;

void CoordinatorNode::set_sync_failure(double p) {
  options_.log.sync_failure = p;
  if (log_) log_->set_sync_failure(p);
}

void CoordinatorNode::AddParticipant(const std::string& endpoint, ParticipantNode* node) {
  endpoints_[endpoint] = node;
}

absl::Status CoordinatorNode::Start() {
  ++epoch_;
  ++process_;
  coordinator::EngineOptions engine_options = options_.engine;
  engine_options.epoch = epoch_;
  engine_options.random_seed = loop_->rng()();
  coordinator::RecoveryState recovery(engine_options.retention, loop_->now());
  absl::Status replayed = SimLog::Recover(&disk_, [&](const wal::Record& record) {
    if (absl::Status s = recovery.Apply(record.type, record.payload); !s.ok()) {
      history_->Violation(absl::StrCat("unreadable log record: ", s.ToString()));
    }
  });
  if (!replayed.ok()) return replayed;
  engine_ = std::make_unique<coordinator::Engine>(engine_options);
  log_ = std::make_unique<SimLog>(loop_, &disk_, options_.log, [this] { return Checkpoint(); });
  net_->Restart(id_);
  loop_->Trace(absl::StrCat("coord START epoch ", epoch_, ", ", recovery.unfinished().size(),
                            " commit(s) to re-drive, ", recovery.one_phase().size(),
                            " one-phase branch(es) to ask"));
  Actions out;
  engine_->Recover(recovery, loop_->now(), &out);
  expired_logged_ = recovery.saw_expired();
  if (!expired_logged_) {
    // As the daemon does: no txid is issued before the mark is durable, or
    // a crash now would make the next start expire this epoch.
    log_->Append(coordinator::kRecordExpired,
                 coordinator::EncodeExpired(engine_->retained().expired()), /*sync=*/true,
                 [this, process = process_](absl::Status s) {
                   if (process != process_ || !running()) return;
                   if (s.ok()) expired_logged_ = true;
                   if (!s.ok() && on_log_failure_) on_log_failure_();
                 });
  }
  Run(std::move(out));
  return absl::OkStatus();
}

void CoordinatorNode::Crash() {
  if (!running()) return;
  loop_->Trace(absl::StrCat("coord CRASH (epoch ", epoch_, ")"));
  net_->Crash(id_);
  engine_.reset();
  log_.reset();
  waiters_.clear();
  disk_.Crash(loop_->rng());
}

std::vector<std::string> CoordinatorNode::DescribeOpen() const {
  std::vector<std::string> lines;
  if (!engine_) return lines;
  for (const coordinator::LogCommit& live : engine_->LiveCommits()) {
    lines.push_back(absl::StrCat("coordinator: ", live.txid, " still COMMITTING"));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

absl::StatusOr<bool> CoordinatorNode::OutcomeOf(const std::string& txid) const {
  absl::StatusOr<coordinator::TransactionView> view = engine_->Describe(txid);
  if (!view.ok()) return view.status();
  switch (view->state) {
    case coordinator::TxState::kCommitting:
    case coordinator::TxState::kCommitted:
      return true;
    case coordinator::TxState::kAborted:
      return false;
    default:
      return absl::FailedPreconditionError(
          absl::StrCat(txid, " is still ", coordinator::TxStateName(view->state)));
  }
}

std::vector<wal::Record> CoordinatorNode::Checkpoint() {
  std::vector<wal::Record> records;
  for (coordinator::EncodedRecord& r : engine_->Checkpoint()) {
    records.push_back({r.type, std::move(r.payload)});
  }
  return records;
}

absl::Status CoordinatorNode::CheckAccepting() const {
  if (!expired_logged_) return absl::UnavailableError("coordinator is still starting");
  if (absl::Status health = log_->health(); !health.ok()) {
    return absl::UnavailableError(
        absl::StrCat("coordinator refuses new work: its log failed: ", health.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<coordinator::BeginResult> CoordinatorNode::Begin(absl::Duration timeout) {
  if (absl::Status s = CheckAccepting(); !s.ok()) return s;
  Actions out;
  absl::StatusOr<coordinator::BeginResult> result = engine_->Begin(timeout, loop_->now(), &out);
  Run(std::move(out));
  return result;
}

absl::Status CoordinatorNode::Enlist(const std::string& txid, const BranchRef& branch,
                                     bool prepared) {
  Actions out;
  absl::Status status = engine_->Enlist(txid, branch, prepared, loop_->now(), &out);
  loop_->Trace(absl::StrCat("coord Enlist ", txid, " ", branch.participant,
                            prepared ? " (prepared)" : "", ": ", StatusText(status)));
  Run(std::move(out));
  return status;
}

void CoordinatorNode::Commit(const std::string& txid, Reply reply) {
  if (absl::Status s = CheckAccepting(); !s.ok()) {
    reply(s);
    return;
  }
  waiters_[txid].push_back(reply);
  Actions out;
  absl::Status status = engine_->Commit(txid, loop_->now(), &out);
  if (!status.ok()) {
    // Registered before the call, as Runtime::Commit does; withdrawn here.
    auto& list = waiters_[txid];
    list.pop_back();
    if (list.empty()) waiters_.erase(txid);
    reply(status);
  }
  Run(std::move(out));
}

absl::Status CoordinatorNode::Abort(const std::string& txid) {
  Actions out;
  absl::Status status = engine_->Abort(txid, "aborted by the client", loop_->now(), &out);
  Run(std::move(out));
  return status;
}

absl::StatusOr<coordinator::Outcome> CoordinatorNode::QueryOutcome(
    const std::string& txid, const std::string& participant) {
  absl::StatusOr<coordinator::Outcome> outcome = engine_->QueryOutcome(txid, participant);
  if (outcome.ok() && *outcome != coordinator::Outcome::kPending) {
    history_->OutcomeAnswered(txid, participant, *outcome == coordinator::Outcome::kCommitted);
  }
  return outcome;
}

void CoordinatorNode::Answer(const std::string& txid, const absl::StatusOr<CommitReply>& reply) {
  auto it = waiters_.find(txid);
  if (it == waiters_.end()) return;
  std::vector<Reply> waiting = std::move(it->second);
  waiters_.erase(it);
  for (Reply& r : waiting) r(reply);
}

ParticipantNode* CoordinatorNode::Target(const BranchRef& branch) {
  auto it = endpoints_.find(branch.endpoint);
  return it == endpoints_.end() ? nullptr : it->second;
}

void CoordinatorNode::Run(Actions actions) {
  const uint64_t process = process_;
  // Clients first, as Runtime::DeliverDecisions does under its lock.
  for (const Action& action : actions) {
    const auto* d = std::get_if<coordinator::Decided>(&action);
    if (d == nullptr) continue;
    if (!d->error.ok()) {
      loop_->Trace(absl::StrCat("coord ", d->txid, " outcome unknown: ", d->error.message()));
      Answer(d->txid, absl::UnavailableError(d->error.message()));
      continue;
    }
    loop_->Trace(absl::StrCat("coord DECIDED ", d->txid, d->committed ? " COMMITTED" : " ABORTED",
                              d->reason.empty() ? "" : ": ", d->reason));
    history_->CoordinatorDecided(d->txid, d->committed);
    Answer(d->txid, CommitReply{d->committed, d->reason});
  }
  for (Action& action : actions) {
    if (auto* a = std::get_if<coordinator::SendPrepare>(&action)) {
      ParticipantNode* target = Target(a->branch);
      if (target == nullptr) continue;
      net_->Call<absl::StatusOr<participant::Vote>>(
          id_, target->id(), absl::StrCat("Prepare ", a->txid), options_.engine.prepare_timeout,
          true,
          [target, txid = a->txid, token = a->branch.token](auto reply) {
            reply(target->Prepare(txid, token));
          },
          [this, txid = a->txid, p = a->branch.participant](absl::StatusOr<participant::Vote> v) {
            absl::StatusOr<coordinator::Vote> vote =
                v.ok() ? absl::StatusOr<coordinator::Vote>(ToEngine(*v)) : v.status();
            Actions out;
            engine_->OnPrepareResult(txid, p, vote, loop_->now(), &out);
            Run(std::move(out));
          });
    } else if (auto* a = std::get_if<coordinator::SendCommit>(&action)) {
      ParticipantNode* target = Target(a->branch);
      if (target == nullptr) continue;
      net_->Call<absl::Status>(
          id_, target->id(), absl::StrCat("Commit ", a->txid), options_.phase2_rpc_timeout, true,
          [target, txid = a->txid](auto reply) { reply(target->Commit(txid)); },
          [this, txid = a->txid, p = a->branch.participant](absl::Status s) {
            Actions out;
            engine_->OnPhase2Result(txid, p, s, loop_->now(), &out);
            Run(std::move(out));
          });
    } else if (auto* a = std::get_if<coordinator::SendAbort>(&action)) {
      ParticipantNode* target = Target(a->branch);
      if (target == nullptr) continue;
      net_->Call<absl::Status>(
          id_, target->id(), absl::StrCat("Abort ", a->txid), options_.abort_rpc_timeout, true,
          [target, txid = a->txid](auto reply) { reply(target->Abort(txid)); },
          [](absl::Status) {});
    } else if (auto* a = std::get_if<coordinator::SendCommitOnePhase>(&action)) {
      ParticipantNode* target = Target(a->branch);
      if (target == nullptr) continue;
      net_->Call<absl::StatusOr<participant::Outcome>>(
          id_, target->id(), absl::StrCat("CommitOnePhase ", a->txid),
          options_.phase2_rpc_timeout, true,
          [target, txid = a->txid, token = a->branch.token](auto reply) {
            reply(target->CommitOnePhase(txid, token));
          },
          [this, txid = a->txid, p = a->branch.participant](
              absl::StatusOr<participant::Outcome> o) {
            absl::StatusOr<bool> committed =
                o.ok() ? absl::StatusOr<bool>(*o == participant::Outcome::kCommitted)
                       : o.status();
            Actions out;
            engine_->OnOnePhaseResult(txid, p, committed, loop_->now(), &out);
            Run(std::move(out));
          });
    } else if (auto* a = std::get_if<LogCommit>(&action)) {
      if (options_.bug_reply_before_durable) {
        loop_->Trace(absl::StrCat("coord BUG: answering COMMITTED for ", a->txid,
                                  " before its COMMIT record is durable"));
        Answer(a->txid, CommitReply{true, ""});
      }
      log_->Append(coordinator::kRecordCommit, EncodeCommit(*a), /*sync=*/true,
                   [this, process, txid = a->txid](absl::Status s) {
                     if (process != process_ || !running()) return;
                     Actions out;
                     engine_->OnCommitLogged(txid, s, loop_->now(), &out);
                     Run(std::move(out));
                     if (!s.ok() && on_log_failure_) on_log_failure_();
                   });
    } else if (auto* a = std::get_if<coordinator::LogOnePhase>(&action)) {
      log_->Append(coordinator::kRecordOnePhase, coordinator::EncodeOnePhase(*a), /*sync=*/true,
                   [this, process, txid = a->txid](absl::Status s) {
                     if (process != process_ || !running()) return;
                     Actions out;
                     engine_->OnOnePhaseLogged(txid, s, loop_->now(), &out);
                     Run(std::move(out));
                     if (!s.ok() && on_log_failure_) on_log_failure_();
                   });
    } else if (auto* a = std::get_if<coordinator::LogEnd>(&action)) {
      log_->Append(coordinator::kRecordEnd, coordinator::EncodeEnd(*a), /*sync=*/false,
                   nullptr);
    } else if (auto* a = std::get_if<coordinator::ArmTimer>(&action)) {
      loop_->At(a->at, [this, process, timer = a->timer] {
        if (process != process_ || !running()) return;
        Actions out;
        engine_->OnTimer(timer, loop_->now(), &out);
        Run(std::move(out));
      });
    }
  }
}

}  // namespace txcoord::sim
