#include "sim/coordinator_node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/ha/etcd_decision_log.h"
#include "coordinator/ha/space_owner.h"
#include "coordinator/records.h"
#include "coordinator/recovery_state.h"
#include "coordinator/wal/decision_log.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

using coordinator::BranchRef;

// The event loop as one process's Scheduler: a timer of a process that
// crashed never runs, since the runtime it would call is gone; one that
// comes due while the process is paused runs when it resumes.
class CoordinatorNode::ProcessScheduler final : public Scheduler {
 public:
  ProcessScheduler(EventLoop* loop, Network* net, NodeId node)
      : loop_(loop), net_(net), node_(node) {}
  ~ProcessScheduler() override { *alive_ = false; }
  ProcessScheduler(const ProcessScheduler&) = delete;
  ProcessScheduler& operator=(const ProcessScheduler&) = delete;

  absl::Time Now() override { return loop_->Now(); }
  TimerId Schedule(absl::Time at, std::function<void()> fn) override {
    return loop_->Schedule(at, [net = net_, node = node_, alive = alive_, fn = std::move(fn)] {
      if (!*alive) return;
      net->RunAt(node, [alive, fn] {
        if (*alive) fn();
      });
    });
  }
  void Cancel(TimerId id) override { loop_->Cancel(id); }

 private:
  EventLoop* const loop_;
  Network* const net_;
  const NodeId node_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// One coordinator process. Members go in reverse order: the runtime first,
// then what it calls.
struct CoordinatorNode::Process {
  Process(EventLoop* loop, Network* net, NodeId id, uint64_t incarnation)
      : incarnation(incarnation),
        scheduler(loop, net, id),
        transport(loop, net, SimParticipantTransportOptions{id}),
        participants(&transport, loop) {}

  const uint64_t incarnation;
  ProcessScheduler scheduler;
  // The daemon's batching client over the simulated network: calls to one
  // participant queue while two are in flight and go out as one Batch. The
  // network drops the reply of a call whose caller crashed, so no callback
  // reaches a destroyed runtime.
  SimParticipantTransport transport;
  coordinator::BatchingParticipantClient participants;
  // With etcd: the connection, the lease a standby campaigns with, and once
  // the space is taken its keeper.
  std::unique_ptr<EtcdConnection> etcd;
  int64_t lease = 0;
  std::string last_holder;
  std::unique_ptr<coordinator::ha::OwnershipKeeper> keeper;
  bool lost = false;
  SimWal* wal = nullptr;  // the log, without etcd
  std::unique_ptr<wal::DecisionLog> log;
  std::unique_ptr<coordinator::Runtime> runtime;
};

CoordinatorNode::CoordinatorNode(EventLoop* loop, Network* net, History* history, NodeId id,
                                 const CoordinatorNodeOptions& options)
    : loop_(loop), net_(net), history_(history), id_(id), name_(net->name(id)), options_(options) {}

CoordinatorNode::~CoordinatorNode() = default;

void CoordinatorNode::set_sync_failure(double p) {
  options_.log.sync_failure = p;
  if (process_ && process_->wal != nullptr) process_->wal->set_sync_failure(p);
}

void CoordinatorNode::AddParticipant(const std::string& endpoint, ParticipantNode* node) {
  endpoints_[endpoint] = node;
}

bool CoordinatorNode::serving() const { return process_ && process_->runtime; }

bool CoordinatorNode::paused() const { return process_ && net_->paused(id_); }

coordinator::RuntimeOptions CoordinatorNode::MakeRuntimeOptions() {
  coordinator::RuntimeOptions runtime_options;
  runtime_options.engine = options_.engine;
  runtime_options.engine.epoch = epoch_;
  runtime_options.engine.random_seed = loop_->rng()();
  // Each start's own secret, drawn from nothing new (earlier seeds' runs
  // stay); a real coordinator draws 32 random bytes.
  runtime_options.vote_secret =
      absl::StrCat(name_, "/", epoch_, "/", incarnation_, "/", runtime_options.engine.random_seed);
  runtime_options.phase2_rpc_timeout = options_.phase2_rpc_timeout;
  runtime_options.abort_rpc_timeout = options_.abort_rpc_timeout;
  runtime_options.on_decided = [this](const std::string& txid, bool committed) {
    loop_->Trace(absl::StrCat(name_, " DECIDED ", txid, committed ? " COMMITTED" : " ABORTED"));
    history_->CoordinatorDecided(txid, committed);
  };
  return runtime_options;
}

absl::Status CoordinatorNode::Start() {
  if (options_.etcd == nullptr) return StartWithWal();
  StartWithEtcd();
  return absl::OkStatus();
}

absl::Status CoordinatorNode::StartWithWal() {
  ++epoch_;
  const uint64_t incarnation = ++incarnation_;
  coordinator::RecoveryState recovery(options_.engine.retention, loop_->now());
  absl::Status replayed = SimWal::Recover(&disk_, [&](const wal::Record& record) {
    if (absl::Status s = recovery.Apply(record.type, record.payload); !s.ok()) {
      history_->Violation(absl::StrCat("unreadable log record: ", s.ToString()));
    }
  });
  if (!replayed.ok()) return replayed;

  process_ = std::make_unique<Process>(loop_, net_, id_, incarnation);
  Process* p = process_.get();
  auto wal = std::make_unique<SimWal>(
      loop_, &disk_, options_.log, [p] { return p->runtime->CheckpointRecords(); },
      [this] {
        if (on_log_failure_) on_log_failure_();
      });
  p->wal = wal.get();
  p->log = std::move(wal);
  net_->Restart(id_);
  Serve(recovery, absl::StrCat("START epoch ", epoch_));
  return absl::OkStatus();
}

void CoordinatorNode::Serve(const coordinator::RecoveryState& recovery, const std::string& how) {
  Process* p = process_.get();
  for (const auto& [endpoint, node] : endpoints_) p->transport.AddParticipant(endpoint, node);
  p->runtime = std::make_unique<coordinator::Runtime>(MakeRuntimeOptions(), p->log.get(),
                                                      &p->participants, &p->scheduler);
  loop_->Trace(absl::StrCat(name_, " ", how, ", ", recovery.unfinished().size(),
                            " commit(s) to re-drive, ", recovery.one_phase().size(),
                            " one-phase branch(es) to ask"));
  const uint64_t incarnation = p->incarnation;
  p->runtime->RecoverAsync(recovery, [this, incarnation](absl::Status ready) {
    if (process_ == nullptr || process_->incarnation != incarnation) return;
    loop_->Trace(ready.ok() ? absl::StrCat(name_, " READY")
                            : absl::StrCat(name_, " cannot start: ", ready.ToString()));
  });
}

void CoordinatorNode::StartWithEtcd() {
  const uint64_t incarnation = ++incarnation_;
  process_ = std::make_unique<Process>(loop_, net_, id_, incarnation);
  process_->etcd =
      std::make_unique<EtcdConnection>(options_.etcd, loop_, name_, options_.etcd_lost_answer);
  net_->Restart(id_);
  loop_->Trace(absl::StrCat(name_, " START as a standby"));
  Campaign(incarnation);
}

void CoordinatorNode::Campaign(uint64_t incarnation) {
  if (process_ == nullptr || process_->incarnation != incarnation) return;
  Process* p = process_.get();
  coordinator::ha::CampaignOptions campaign;
  campaign.keys = coordinator::ha::SpaceKeys::For(options_.etcd_prefix, options_.engine.cluster_id);
  campaign.self = name_;
  campaign.ttl = options_.lease_ttl;
  std::string holder;
  absl::StatusOr<std::optional<coordinator::ha::Ownership>> taken =
      coordinator::ha::CampaignRound(p->etcd.get(), campaign, &p->lease, &holder);
  if (taken.ok() && taken->has_value()) {
    const coordinator::ha::Ownership ownership = **taken;
    epoch_ = ownership.epoch;
    loop_->Trace(absl::StrCat(name_, " TAKES the space: epoch ", ownership.epoch, ", fence ",
                              ownership.fence, ", lease ", ownership.lease));
    coordinator::ha::KeeperOptions keeper;
    keeper.ttl = options_.lease_ttl;
    keeper.min_backoff = absl::Milliseconds(50);
    p->keeper = std::make_unique<coordinator::ha::OwnershipKeeper>(
        p->etcd.get(), &p->scheduler, ownership, keeper,
        [this, incarnation](const absl::Status& why) { Lost(incarnation, why); });
    if (on_owner_) on_owner_();
    RecoverFromEtcd(incarnation);
    return;
  }
  if (taken.ok() && holder != p->last_holder) {
    loop_->Trace(
        absl::StrCat(name_, " standby: the space is held by ", holder.empty() ? "nobody" : holder));
    p->last_holder = holder;
  }
  p->scheduler.After(options_.campaign_poll, [this, incarnation] { Campaign(incarnation); });
}

void CoordinatorNode::RecoverFromEtcd(uint64_t incarnation) {
  if (process_ == nullptr || process_->incarnation != incarnation || process_->lost) return;
  Process* p = process_.get();
  const coordinator::ha::Ownership& ownership = p->keeper->ownership();
  const coordinator::ha::SpaceKeys keys =
      coordinator::ha::SpaceKeys::For(options_.etcd_prefix, options_.engine.cluster_id);
  coordinator::RecoveryState recovery(options_.engine.retention, loop_->now());
  size_t keys_read = 0;
  absl::Status loaded = coordinator::ha::LoadDecisions(p->etcd.get(), keys, &recovery, &keys_read);
  if (absl::IsUnavailable(loaded)) {
    // The keeper holds the space meanwhile (or reports its loss).
    p->scheduler.After(options_.campaign_poll,
                       [this, incarnation] { RecoverFromEtcd(incarnation); });
    return;
  }
  if (!loaded.ok()) {
    history_->Violation(
        absl::StrCat(name_, ": the decision log on etcd cannot be read: ", loaded.ToString()));
    return;
  }
  coordinator::ha::EtcdLogOptions log;
  log.keys = keys;
  log.ownership = ownership;
  log.unfenced_for_tests = options_.bug_unfenced_log;
  p->log = std::make_unique<coordinator::ha::EtcdDecisionLog>(
      p->etcd.get(), &p->scheduler, log, recovery,
      [this, incarnation](const absl::Status& why) { Lost(incarnation, why); });
  Serve(recovery, absl::StrCat("SERVES epoch ", epoch_, " (", keys_read, " key(s) read)"));
}

void CoordinatorNode::Lost(uint64_t incarnation, const absl::Status& why) {
  if (process_ == nullptr || process_->incarnation != incarnation || process_->lost) return;
  process_->lost = true;
  loop_->Trace(absl::StrCat(
      name_,
      absl::IsFailedPrecondition(why) ? " LOST the space: " : " STOPS, its decision log failed: ",
      why.ToString()));
  // Fail-stop, but not from inside the log's or the keeper's callback.
  loop_->After(absl::ZeroDuration(), [this, incarnation] {
    if (process_ == nullptr || process_->incarnation != incarnation) return;
    Crash();
    if (on_stopped_) on_stopped_();
  });
}

void CoordinatorNode::Crash() {
  if (!running()) return;
  loop_->Trace(absl::StrCat(name_, " CRASH (epoch ", epoch_, ")"));
  net_->Crash(id_);
  if (process_->etcd) process_->etcd->Cut();
  process_.reset();
  disk_.Crash(loop_->rng());
}

void CoordinatorNode::CutOffFromEtcd(absl::Duration duration) {
  if (!running() || !process_->etcd) return;
  loop_->Trace(absl::StrCat(name_, " CUT OFF from etcd for ", absl::FormatDuration(duration)));
  process_->etcd->CutOff(loop_->now() + duration);
}

void CoordinatorNode::Pause() {
  if (!running() || net_->paused(id_)) return;
  loop_->Trace(absl::StrCat(name_, " PAUSE (epoch ", epoch_, ")"));
  net_->Pause(id_);
}

void CoordinatorNode::Resume() {
  if (!running() || !net_->paused(id_)) return;
  loop_->Trace(absl::StrCat(name_, " RESUME (epoch ", epoch_, ")"));
  net_->Resume(id_);
}

absl::Status CoordinatorNode::NotServing() const {
  if (!process_) return absl::UnavailableError("coordinator is down");
  return absl::UnavailableError(absl::StrCat(name_, " does not own the space (a standby)"));
}

size_t CoordinatorNode::open_transactions() const {
  return serving() ? process_->runtime->open_transactions() : 0;
}

std::vector<std::string> CoordinatorNode::DescribeOpen() const {
  std::vector<std::string> lines;
  if (!serving()) return lines;
  coordinator::ListFilter filter;
  filter.page_size = 1000;
  absl::StatusOr<coordinator::ListPage> page = process_->runtime->List(filter);
  if (!page.ok()) return {absl::StrCat("coordinator: cannot list: ", page.status().ToString())};
  for (const coordinator::TransactionView& view : page->transactions) {
    lines.push_back(
        absl::StrCat("coordinator: ", view.txid, " still ", coordinator::TxStateName(view.state)));
  }
  return lines;
}

absl::StatusOr<bool> CoordinatorNode::OutcomeOf(const std::string& txid) const {
  if (!serving()) return NotServing();
  absl::StatusOr<coordinator::TransactionView> view = process_->runtime->Describe(txid);
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

absl::StatusOr<coordinator::BeginResult> CoordinatorNode::Begin(absl::Duration timeout) {
  if (!serving()) return NotServing();
  return process_->runtime->Begin(timeout);
}

absl::StatusOr<coordinator::ReserveResult> CoordinatorNode::Reserve(uint32_t count,
                                                                    absl::Duration timeout) {
  if (!serving()) return NotServing();
  return process_->runtime->Reserve(count, timeout);
}

absl::Status CoordinatorNode::Enlist(const std::string& txid, const BranchRef& branch,
                                     bool prepared, bool named_in_commit) {
  if (!serving()) return NotServing();
  absl::Status status = process_->runtime->Enlist(txid, branch, prepared, named_in_commit);
  loop_->Trace(absl::StrCat(name_, " Enlist ", txid, " ", branch.participant,
                            prepared ? " (prepared)" : "", ": ",
                            status.ok() ? "OK" : absl::StatusCodeToString(status.code())));
  return status;
}

std::string CoordinatorNode::VoteKey(const std::string& participant) {
  if (!serving()) return "";
  return process_->runtime->VoteKey(participant);
}

void CoordinatorNode::Commit(const std::string& txid, std::vector<coordinator::NamedBranch> named,
                             absl::Time deadline, coordinator::Runtime::CommitCallback reply) {
  if (!serving()) return reply(NotServing());
  // As the daemon's framed Commit, whose thread waits for the decision.
  wal::WriteHereScope write_here;
  process_->runtime->CommitAsync(txid, std::move(named), deadline, std::move(reply));
}

absl::Status CoordinatorNode::Abort(const std::string& txid,
                                    const std::vector<coordinator::NamedBranch>& named) {
  if (!serving()) return NotServing();
  return process_->runtime->Abort(txid, named);
}

absl::StatusOr<coordinator::Outcome> CoordinatorNode::QueryOutcome(const std::string& txid,
                                                                   const std::string& participant) {
  if (!serving()) return NotServing();
  absl::StatusOr<coordinator::Outcome> outcome = process_->runtime->QueryOutcome(txid, participant);
  if (outcome.ok() && *outcome != coordinator::Outcome::kPending) {
    history_->OutcomeAnswered(txid, participant, *outcome == coordinator::Outcome::kCommitted);
  }
  return outcome;
}

absl::StatusOr<coordinator::ListPage> CoordinatorNode::List(const coordinator::ListFilter& filter) {
  if (!serving()) return NotServing();
  return process_->runtime->List(filter);
}

absl::StatusOr<coordinator::AdminResult> CoordinatorNode::RetryPhase2(const std::string& txid) {
  if (!serving()) return NotServing();
  return process_->runtime->RetryPhase2(txid);
}

absl::StatusOr<coordinator::AdminResult> CoordinatorNode::ForceAbort(const std::string& txid,
                                                                     const std::string& reason) {
  if (!serving()) return NotServing();
  return process_->runtime->ForceAbort(txid, reason);
}

void CoordinatorNode::MarkBranchDone(const std::string& txid, const std::string& participant,
                                     const std::string& note,
                                     coordinator::Runtime::AdminCallback done) {
  if (!serving()) return done(NotServing());
  process_->runtime->MarkBranchDoneAsync(txid, participant, note, std::move(done));
}

}  // namespace txcoord::sim
