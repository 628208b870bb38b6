#include "sim/simulator.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "sim/checker.h"
#include "sim/coordinator_group.h"
#include "sim/coordinator_node.h"
#include "sim/history.h"
#include "sim/participant_node.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {
namespace {

// Everything of one run. Members are destroyed in reverse order: clients and
// nodes before the network, the history and the loop they point to.
class World final {
 public:
  explicit World(const SimOptions& options)
      : options_(options),
        dir_(absl::StrCat("/txsim/", NextRunNumber())),
        loop_(options.seed, options.trace_keep, options.trace_all),
        net_(&loop_),
        history_(&loop_) {
    loop_.set_echo_filter(options.trace_filter);
  }

  ~World() {
    for (auto& p : participants_) p->Stop();
    SimVfs::Install().RemoveAll(dir_);
  }

  SimResult Run();

 private:
  static uint64_t NextRunNumber() {
    static std::atomic<uint64_t> next{1};
    return next++;
  }
  bool Setup();
  void ScheduleCrash(bool coordinator, size_t index);
  // The coordinator node a crash hits: the owner of the space if it runs.
  size_t CoordinatorToCrash();
  void SchedulePartition();
  // With etcd: the owner paused, then resumed; etcd unavailable for a while.
  void SchedulePause();
  void ScheduleEtcdOutage();
  void ScheduleEtcdCutOff();
  void ScheduleSpaceAlarm();
  // The operator: one action now, then the next one later.
  void ScheduleOperator();
  void Operate();
  void RetryPhase2(CoordinatorNode& coordinator, const coordinator::TransactionView& view);
  void ForceAbort(CoordinatorNode& coordinator, const coordinator::TransactionView& view);
  void RepairBranch(CoordinatorNode& coordinator, const coordinator::TransactionView& view);
  ParticipantNode* ParticipantNamed(const std::string& name) const;
  void Restart(bool coordinator, size_t index);
  void OnLogFailure();
  // With etcd: a process stopped (the space lost, or its log failed); it
  // comes back as a standby.
  void OnStopped(size_t index);
  bool ClientsDone() const;
  std::vector<ParticipantNode*> Participants() const;

  const SimOptions options_;
  const std::string dir_;
  EventLoop loop_;
  Network net_;
  History history_;
  std::unique_ptr<CoordinatorGroup> coordinators_;
  std::vector<std::unique_ptr<ParticipantNode>> participants_;
  std::vector<std::unique_ptr<Client>> clients_;
  bool faulty_ = true;  // the fault phase is on
  bool log_restart_pending_ = false;
  bool pausing_ = false;  // a pause is on
  bool etcd_down_ = false;
  bool space_alarm_ = false;
  int tickets_ = 0;
  SimResult result_;
};

std::vector<ParticipantNode*> World::Participants() const {
  std::vector<ParticipantNode*> out;
  for (const auto& p : participants_) out.push_back(p.get());
  return out;
}

bool World::Setup() {
  SimVfs& vfs = SimVfs::Install();
  // SQLite's own PRNG (WAL salts) is process-wide: seed it per run.
  sqlite3_test_control(SQLITE_TESTCTRL_PRNG_SEED, static_cast<int>(options_.seed), nullptr);

  CoordinatorNodeOptions co;
  co.engine.cluster_id = "sim";
  co.engine.default_tx_timeout = options_.workload.tx_timeout;
  co.engine.prepare_timeout = absl::Seconds(1);
  co.engine.phase2_backoff_initial = absl::Milliseconds(50);
  co.engine.phase2_backoff_max = absl::Seconds(2);
  co.engine.finished_cache = options_.finished_cache;
  co.log.sync_failure = options_.faults.log_sync_failure;
  co.log.rotate_records = options_.log_rotate_records;
  co.log.bug_ack_before_sync = options_.bug_reply_before_durable;
  co.lease_ttl = options_.lease_ttl;
  co.bug_unfenced_log = options_.bug_unfenced_log;
  co.etcd_lost_answer = options_.faults.etcd_lost_answer;
  CoordinatorGroupOptions group;
  group.node = co;
  group.etcd_log = options_.etcd_log;
  group.processes = options_.coordinator_processes;
  group.stale_route = options_.faults.stale_route;
  coordinators_ = std::make_unique<CoordinatorGroup>(&loop_, &net_, &history_, group);
  coordinators_->node(0).set_on_log_failure([this] { OnLogFailure(); });
  for (size_t i = 0; i < coordinators_->size(); ++i) {
    coordinators_->node(i).set_on_stopped([this, i] { OnStopped(i); });
  }
  const CoordinatorRoute route = [this] { return coordinators_->Route(); };

  for (int i = 0; i < options_.participants; ++i) {
    ParticipantNodeOptions po;
    po.name = absl::StrCat("p", i);
    po.dir = absl::StrCat(dir_, "/", po.name);
    po.idle_timeout = options_.agent_idle_timeout;
    po.deferred_votes = options_.deferred_votes;
    po.bug_no_resolver = options_.bug_no_resolver;
    auto node = std::make_unique<ParticipantNode>(&loop_, &net_, net_.AddNode(po.name), route, po);
    if (absl::Status s = node->Start(); !s.ok()) {
      history_.Violation(absl::StrCat(po.name, ": cannot open: ", s.ToString()));
      return false;
    }
    absl::StatusOr<participant::ExecuteResult> schema =
        node->Local(SchemaStatements(options_.workload));
    if (!schema.ok()) {
      history_.Violation(
          absl::StrCat(po.name, ": cannot create the schema: ", schema.status().ToString()));
      return false;
    }
    // Set up durably first: the bug is about votes, not about the schema.
    if (options_.bug_vote_before_durable) vfs.SetLaggingSync(po.dir, true);
    coordinators_->AddParticipant(node->endpoint(), node.get());
    participants_.push_back(std::move(node));
  }
  for (size_t i = 0; i < coordinators_->size(); ++i) {
    if (absl::Status s = coordinators_->node(i).Start(); !s.ok()) {
      history_.Violation(absl::StrCat("coordinator cannot start: ", s.ToString()));
      return false;
    }
  }
  NetworkFaults nf;
  nf.loss = options_.faults.loss;
  nf.duplicate = options_.faults.duplicate;
  nf.slow = options_.faults.slow;
  nf.slow_max = options_.faults.slow_max;
  net_.set_faults(nf);

  tickets_ = options_.transactions;
  for (int i = 0; i < options_.clients; ++i) {
    clients_.push_back(std::make_unique<Client>(
        &loop_, &net_, &history_, net_.AddNode(absl::StrCat("client", i)), i, route, Participants(),
        options_.workload, [this] { return tickets_-- > 0; }));
  }
  return true;
}

void World::Restart(bool coordinator, size_t index) {
  if (coordinator) {
    CoordinatorNode& node = coordinators_->node(index);
    if (node.running()) return;
    if (absl::Status s = node.Start(); !s.ok()) {
      history_.Violation(absl::StrCat("coordinator cannot restart: ", s.ToString()));
    }
    return;
  }
  ParticipantNode& p = *participants_[index];
  if (p.running()) return;
  if (absl::Status s = p.Start(); !s.ok()) {
    history_.Violation(absl::StrCat(p.name(), " cannot restart: ", s.ToString()));
  }
}

void World::ScheduleCrash(bool coordinator, size_t index) {
  const absl::Duration mtbf =
      coordinator ? options_.faults.coordinator_mtbf : options_.faults.participant_mtbf;
  if (mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(mtbf), [this, coordinator, index]() mutable {
    if (!faulty_) return;
    if (coordinator) {
      index = CoordinatorToCrash();
      coordinators_->node(index).Crash();
      ++result_.coordinator_crashes;
    } else {
      participants_[index]->Crash();
      ++result_.participant_crashes;
    }
    loop_.After(loop_.UniformDuration(options_.faults.min_down, options_.faults.max_down),
                [this, coordinator, index] {
                  Restart(coordinator, index);
                  ScheduleCrash(coordinator, index);
                });
  });
}

size_t World::CoordinatorToCrash() {
  const size_t owner = coordinators_->owner();
  if (coordinators_->node(owner).running()) return owner;
  std::vector<size_t> running;
  for (size_t i = 0; i < coordinators_->size(); ++i) {
    if (coordinators_->node(i).running()) running.push_back(i);
  }
  if (running.empty()) return owner;
  return running[static_cast<size_t>(loop_.Uniform(0, static_cast<int64_t>(running.size()) - 1))];
}

void World::SchedulePause() {
  if (!options_.etcd_log || options_.faults.pause_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.pause_mtbf), [this] {
    if (!faulty_) return;
    CoordinatorNode& node = coordinators_->node(coordinators_->owner());
    if (!pausing_ && node.serving()) {
      pausing_ = true;
      ++result_.pauses;
      node.Pause();
      loop_.After(loop_.UniformDuration(options_.faults.min_pause, options_.faults.max_pause),
                  [this, &node] {
                    pausing_ = false;
                    node.Resume();
                  });
    }
    SchedulePause();
  });
}

void World::ScheduleEtcdOutage() {
  if (!options_.etcd_log || options_.faults.etcd_outage_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.etcd_outage_mtbf), [this] {
    if (!faulty_) return;
    if (!etcd_down_) {
      etcd_down_ = true;
      ++result_.etcd_outages;
      const absl::Duration d =
          loop_.UniformDuration(absl::Milliseconds(1), options_.faults.max_etcd_outage);
      loop_.Trace(absl::StrCat("ETCD UNAVAILABLE for ", absl::FormatDuration(d)));
      coordinators_->etcd()->SetAvailable(false);
      loop_.After(d, [this] {
        etcd_down_ = false;
        loop_.Trace("ETCD AVAILABLE");
        coordinators_->etcd()->SetAvailable(true);
      });
    }
    ScheduleEtcdOutage();
  });
}

void World::ScheduleEtcdCutOff() {
  if (!options_.etcd_log || options_.faults.etcd_cut_off_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.etcd_cut_off_mtbf), [this] {
    if (!faulty_) return;
    CoordinatorNode& node = coordinators_->node(coordinators_->owner());
    if (node.serving()) {
      ++result_.etcd_cut_offs;
      node.CutOffFromEtcd(
          loop_.UniformDuration(absl::Milliseconds(1), options_.faults.max_etcd_cut_off));
    }
    ScheduleEtcdCutOff();
  });
}

void World::ScheduleSpaceAlarm() {
  if (!options_.etcd_log || options_.faults.space_alarm_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.space_alarm_mtbf), [this] {
    if (!faulty_) return;
    if (!space_alarm_) {
      space_alarm_ = true;
      ++result_.space_alarms;
      const absl::Duration d =
          loop_.UniformDuration(absl::Milliseconds(1), options_.faults.max_space_alarm);
      loop_.Trace(absl::StrCat("ETCD SPACE ALARM for ", absl::FormatDuration(d)));
      coordinators_->etcd()->SetSpaceExceeded(true);
      loop_.After(d, [this] {
        space_alarm_ = false;
        loop_.Trace("ETCD SPACE ALARM disarmed");
        coordinators_->etcd()->SetSpaceExceeded(false);
      });
    }
    ScheduleSpaceAlarm();
  });
}

void World::SchedulePartition() {
  if (options_.faults.partition_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.partition_mtbf), [this] {
    if (!faulty_) return;
    const NodeId node = static_cast<NodeId>(loop_.Uniform(0, options_.participants));
    const absl::Duration d =
        loop_.UniformDuration(absl::Milliseconds(1), options_.faults.max_partition);
    loop_.Trace(absl::StrCat("PARTITION ", net_.name(node), " for ", absl::FormatDuration(d)));
    net_.Isolate(node, d);
    ++result_.partitions;
    SchedulePartition();
  });
}

void World::ScheduleOperator() {
  if (options_.faults.operator_mtbf <= absl::ZeroDuration()) return;
  loop_.After(loop_.Exponential(options_.faults.operator_mtbf), [this] {
    if (!faulty_) return;
    Operate();
    ScheduleOperator();
  });
}

ParticipantNode* World::ParticipantNamed(const std::string& name) const {
  for (const auto& p : participants_) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

void World::Operate() {
  // `txctl list`, at the coordinator the registry names: what is open, and
  // in which state.
  CoordinatorNode* coordinator = coordinators_->Serving();
  if (coordinator == nullptr) return;
  coordinator::ListFilter filter;
  filter.page_size = 1000;
  absl::StatusOr<coordinator::ListPage> page = coordinator->List(filter);
  if (!page.ok()) return;
  std::vector<const coordinator::TransactionView*> committing;
  std::vector<const coordinator::TransactionView*> undecided;
  for (const coordinator::TransactionView& view : page->transactions) {
    if (view.state == coordinator::TxState::kCommitting) committing.push_back(&view);
    if (view.state == coordinator::TxState::kActive ||
        view.state == coordinator::TxState::kPreparing) {
      undecided.push_back(&view);
    }
  }
  auto pick = [this](const std::vector<const coordinator::TransactionView*>& views) {
    return *views[static_cast<size_t>(loop_.Uniform(0, static_cast<int64_t>(views.size()) - 1))];
  };
  switch (loop_.Uniform(0, 2)) {
    case 0:
      if (!committing.empty()) RetryPhase2(*coordinator, pick(committing));
      break;
    case 1:
      if (!undecided.empty()) ForceAbort(*coordinator, pick(undecided));
      break;
    default:
      if (!committing.empty()) RepairBranch(*coordinator, pick(committing));
      break;
  }
}

void World::RetryPhase2(CoordinatorNode& coordinator, const coordinator::TransactionView& view) {
  absl::StatusOr<coordinator::AdminResult> retried = coordinator.RetryPhase2(view.txid);
  loop_.Trace(absl::StrCat("OPERATOR retry ", view.txid, ": ",
                           retried.ok() ? retried->message : retried.status().ToString()));
  if (retried.ok()) ++result_.operator_retries;
}

void World::ForceAbort(CoordinatorNode& coordinator, const coordinator::TransactionView& view) {
  absl::StatusOr<coordinator::AdminResult> aborted =
      coordinator.ForceAbort(view.txid, "stuck, says the operator");
  loop_.Trace(absl::StrCat("OPERATOR abort ", view.txid, " (", coordinator::TxStateName(view.state),
                           "): ", aborted.ok() ? aborted->message : aborted.status().ToString()));
  if (aborted.ok()) ++result_.operator_aborts;
}

void World::RepairBranch(CoordinatorNode& coordinator, const coordinator::TransactionView& view) {
  // The procedure for a branch that cannot acknowledge: make its data
  // match the coordinator's decision by hand (here: a heuristic decision at
  // its agent), then `txctl mark-done`.
  std::vector<const coordinator::BranchView*> waiting;
  for (const coordinator::BranchView& b : view.branches) {
    if (b.vote == coordinator::Vote::kYes && !b.acknowledged) waiting.push_back(&b);
  }
  if (waiting.empty()) return;
  const coordinator::BranchView& branch =
      *waiting[static_cast<size_t>(loop_.Uniform(0, static_cast<int64_t>(waiting.size()) - 1))];
  ParticipantNode* agent = ParticipantNamed(branch.ref.participant);
  if (agent == nullptr || !agent->running()) return;  // the operator cannot reach it now
  const std::vector<std::string> prepared = agent->PreparedTxids();
  if (std::find(prepared.begin(), prepared.end(), view.txid) != prepared.end()) {
    // In doubt: the coordinator says COMMITTING, so the branch commits.
    const participant::Outcome decision = options_.bug_operator_guesses_abort
                                              ? participant::Outcome::kAborted
                                              : participant::Outcome::kCommitted;
    absl::StatusOr<participant::HeuristicDecision> resolved =
        agent->ResolveHeuristically(view.txid, decision, "the coordinator lists it COMMITTING");
    if (!resolved.ok()) {
      loop_.Trace(absl::StrCat("OPERATOR cannot resolve ", view.txid, " at ", agent->name(), ": ",
                               resolved.status().ToString()));
      return;
    }
  }
  // Not in doubt at the agent: a YES vote was durable, so its branch was
  // committed by phase 2 already; only the acknowledgement was lost.
  const std::string txid = view.txid;
  const std::string participant = branch.ref.participant;
  coordinator.MarkBranchDone(
      txid, participant, "made to match COMMITTED by hand",
      [this, txid, participant](absl::StatusOr<coordinator::AdminResult> marked) {
        loop_.Trace(absl::StrCat("OPERATOR mark-done ", txid, " ", participant, ": ",
                                 marked.ok() ? marked->message : marked.status().ToString()));
        if (marked.ok()) ++result_.operator_repairs;
      });
}

void World::OnLogFailure() {
  ++result_.log_failures;
  if (log_restart_pending_) return;
  log_restart_pending_ = true;
  // Fail-stop: a supervisor restarts the coordinator a moment later.
  loop_.After(loop_.UniformDuration(absl::Milliseconds(10), absl::Milliseconds(200)), [this] {
    log_restart_pending_ = false;
    coordinators_->node(0).Crash();
    ++result_.coordinator_crashes;
    Restart(true, 0);
  });
}

void World::OnStopped(size_t index) {
  ++result_.fail_stops;
  // A supervisor starts it again a moment later.
  loop_.After(loop_.UniformDuration(absl::Milliseconds(10), absl::Milliseconds(200)),
              [this, index] { Restart(true, index); });
}

bool World::ClientsDone() const {
  for (const auto& c : clients_) {
    if (!c->done()) return false;
  }
  return true;
}

SimResult World::Run() {
  result_.seed = options_.seed;
  if (Setup()) {
    ScheduleCrash(true, 0);
    for (size_t i = 0; i < participants_.size(); ++i) ScheduleCrash(false, i);
    SchedulePartition();
    SchedulePause();
    ScheduleEtcdOutage();
    ScheduleEtcdCutOff();
    ScheduleSpaceAlarm();
    ScheduleOperator();
    for (auto& c : clients_) c->Start();
    // The fault phase lasts until the last transaction has started, so
    // that the quiet phase begins with transactions in flight.
    const absl::Time fault_end = loop_.now() + options_.fault_phase_limit;
    while (tickets_ > 0 && loop_.now() < fault_end && loop_.Step()) {
    }
    result_.fault_phase = loop_.elapsed();
    if (options_.crash_all_at_end) {
      loop_.Trace("END OF FAULTS: every node crashes at once");
      for (size_t i = 0; i < coordinators_->size(); ++i) {
        if (coordinators_->node(i).running()) ++result_.coordinator_crashes;
        coordinators_->node(i).Crash();
      }
      for (auto& p : participants_) {
        p->Crash();
        ++result_.participant_crashes;
      }
    }

    // Quiet phase: every node up, a reliable network, no more faults.
    faulty_ = false;
    loop_.Trace("QUIET PHASE: faults stop, every node up, reliable network");
    net_.set_faults(NetworkFaults());
    net_.Heal();
    if (coordinators_->etcd() != nullptr) {
      coordinators_->etcd()->SetAvailable(true);
      coordinators_->etcd()->SetSpaceExceeded(false);
    }
    for (size_t i = 0; i < coordinators_->size(); ++i) {
      // A lost etcd answer stays possible: every write is retried or sent
      // again, so coming to rest must not depend on it stopping.
      coordinators_->node(i).set_sync_failure(0);
      coordinators_->node(i).Resume();
      Restart(true, i);
    }
    for (size_t i = 0; i < participants_.size(); ++i) Restart(false, i);
    const absl::Time quiet_start = loop_.now();
    std::vector<std::string> left = {"clients still busy"};
    absl::Time next_check = loop_.now();
    while (loop_.now() - quiet_start <= options_.quiet_limit && loop_.Step()) {
      if (loop_.now() < next_check) continue;
      next_check = loop_.now() + absl::Milliseconds(100);
      // A log-failure restart or a takeover is due.
      CoordinatorNode* serving = coordinators_->Serving();
      if (serving == nullptr) {
        left = {coordinators_->NobodyServes()};
        continue;
      }
      left = {"clients still busy"};
      if (!ClientsDone()) continue;
      left = Leftovers(serving, Participants());
      for (std::string& line : coordinators_->LogLeftovers()) left.push_back(std::move(line));
      if (left.empty()) break;
    }
    result_.time_to_rest = loop_.now() - quiet_start;
    if (!left.empty()) {
      history_.Violation(absl::StrCat("not at rest ", absl::FormatDuration(options_.quiet_limit),
                                      " into the quiet phase: ", absl::StrJoin(left, "; ")));
    }
    CoordinatorNode* serving = coordinators_->Serving();
    bool all_up = serving != nullptr;
    for (auto& p : participants_) all_up &= p->running();
    if (all_up) CheckSafety(options_.workload, *serving, Participants(), &history_);
  }
  for (const auto& c : clients_) {
    const Client::Stats& s = c->stats();
    result_.clients.begun += s.begun;
    result_.clients.committed += s.committed;
    result_.clients.aborted += s.aborted;
    result_.clients.unknown += s.unknown;
    result_.clients.deadline_exceeded += s.deadline_exceeded;
    result_.clients.settled += s.settled;
    result_.clients.abandoned += s.abandoned;
    result_.clients.one_phase += s.one_phase;
    result_.clients.early_prepared += s.early_prepared;
    result_.clients.named += s.named;
    result_.clients.reserved += s.reserved;
    result_.clients.signed_votes += s.signed_votes;
    result_.clients.deferred_votes += s.deferred_votes;
  }
  for (const auto& p : participants_) result_.asked_rollbacks += p->asked_rollbacks();
  result_.violations = history_.violations();
  result_.ok = result_.violations.empty();
  // The lines leading to the first violation say the most about it.
  result_.trace_tail =
      history_.violations().empty() ? loop_.TraceTail() : history_.trace_at_first_violation();
  result_.trace_hash = loop_.trace_hash();
  result_.network = net_.stats();
  result_.events = loop_.events_run();
  result_.log_rotations = coordinators_ ? coordinators_->node(0).disk().rotations : 0;
  result_.appender_log_batches = coordinators_ ? coordinators_->node(0).disk().appender_batches : 0;
  result_.coordinator_epochs = coordinators_ ? coordinators_->max_epoch() : 0;
  result_.takeovers = coordinators_ ? coordinators_->takeovers() : 0;
  return result_;
}

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  if (options.quiet_logs) SetMinLogLevel(LogLevel::kFatal);
  World world(options);
  return world.Run();
}

std::string ReplayFlags(const SimOptions& o) {
  const FaultOptions& f = o.faults;
  const WorkloadOptions& w = o.workload;
  std::string flags = absl::StrFormat(
      "--seed=%d --transactions=%d --participants=%d --clients=%d --loss=%g --duplicate=%g "
      "--slow=%g --coordinator_mtbf_ms=%d --participant_mtbf_ms=%d --partition_mtbf_ms=%d "
      "--log_sync_failure=%g --early_prepare=%g --named_branches=%g --single_branch=%g "
      "--client_abort=%g "
      "--accounts=%d --max_step_gap_ms=%d --tx_timeout_ms=%d --idle_timeout_ms=%d",
      o.seed, o.transactions, o.participants, o.clients, f.loss, f.duplicate, f.slow,
      absl::ToInt64Milliseconds(f.coordinator_mtbf), absl::ToInt64Milliseconds(f.participant_mtbf),
      absl::ToInt64Milliseconds(f.partition_mtbf), f.log_sync_failure, w.early_prepare,
      w.named_branches, w.single_branch, w.client_abort, w.accounts,
      absl::ToInt64Milliseconds(w.max_step_gap), absl::ToInt64Milliseconds(w.tx_timeout),
      absl::ToInt64Milliseconds(o.agent_idle_timeout));
  absl::StrAppend(
      &flags,
      absl::StrFormat(" --operator_mtbf_ms=%d --short_commit_deadline=%g --settle_by_asking=%g",
                      absl::ToInt64Milliseconds(f.operator_mtbf), w.short_commit_deadline,
                      w.settle_by_asking));
  if (w.reserved_txids > 0) absl::StrAppend(&flags, " --reserved_txids=", w.reserved_txids);
  if (w.signed_votes > 0) absl::StrAppend(&flags, " --signed_votes=", w.signed_votes);
  if (o.deferred_votes > 0) absl::StrAppend(&flags, " --deferred_votes=", o.deferred_votes);
  if (o.finished_cache != SimOptions().finished_cache) {
    absl::StrAppend(&flags, " --finished_cache=", o.finished_cache);
  }
  if (o.etcd_log) {
    absl::StrAppend(
        &flags,
        absl::StrFormat(
            " --etcd_log --coordinators=%d --lease_ttl_ms=%d --pause_mtbf_ms=%d "
            "--max_pause_ms=%d --etcd_outage_mtbf_ms=%d --etcd_cut_off_mtbf_ms=%d "
            "--space_alarm_mtbf_ms=%d --etcd_lost_answer=%g --stale_route=%g",
            o.coordinator_processes, absl::ToInt64Milliseconds(o.lease_ttl),
            absl::ToInt64Milliseconds(f.pause_mtbf), absl::ToInt64Milliseconds(f.max_pause),
            absl::ToInt64Milliseconds(f.etcd_outage_mtbf),
            absl::ToInt64Milliseconds(f.etcd_cut_off_mtbf),
            absl::ToInt64Milliseconds(f.space_alarm_mtbf), f.etcd_lost_answer, f.stale_route));
  }
  if (!o.crash_all_at_end) absl::StrAppend(&flags, " --nocrash_all_at_end");
  if (w.split_execute) absl::StrAppend(&flags, " --split_execute");
  absl::StrAppend(&flags, w.abort_unknown ? " --abort_unknown" : " --noabort_unknown");
  if (o.bug_reply_before_durable) absl::StrAppend(&flags, " --bug_reply_before_durable");
  if (o.bug_vote_before_durable) absl::StrAppend(&flags, " --bug_vote_before_durable");
  if (o.bug_no_resolver) absl::StrAppend(&flags, " --bug_no_resolver");
  if (o.bug_operator_guesses_abort) absl::StrAppend(&flags, " --bug_operator_guesses_abort");
  if (o.bug_unfenced_log) absl::StrAppend(&flags, " --bug_unfenced_log");
  if (w.bug_deadline_means_aborted) absl::StrAppend(&flags, " --bug_deadline_means_aborted");
  return flags;
}

std::string FormatReport(const SimResult& r, const SimOptions& options) {
  std::string out = absl::StrFormat(
      "seed %d: %s. %d begun: %d committed, %d aborted, %d unknown to the client, %d abandoned "
      "(%d one-phase, %d early-prepared branches, %d with named branches, %d on reserved "
      "txids, %d signed votes, %d deferred votes; %d commits past their "
      "deadline, %d settled by "
      "asking; %d idle branches rolled back by asking); crashes: coordinator %d (epoch %d), "
      "participants %d; %d partitions; %d log "
      "failures, %d rotations, %d batches written by their appender; operator: %d retries, %d "
      "aborts, %d branches repaired; messages "
      "%d sent, %d lost, %d duplicated, %d delayed; %.1fs simulated faults, at rest %.1fs later; "
      "%d events\n",
      r.seed, r.ok ? "OK" : "VIOLATION", r.clients.begun, r.clients.committed, r.clients.aborted,
      r.clients.unknown, r.clients.abandoned, r.clients.one_phase, r.clients.early_prepared,
      r.clients.named, r.clients.reserved, r.clients.signed_votes, r.clients.deferred_votes,
      r.clients.deadline_exceeded, r.clients.settled, r.asked_rollbacks, r.coordinator_crashes,
      r.coordinator_epochs, r.participant_crashes, r.partitions, r.log_failures, r.log_rotations,
      r.appender_log_batches, r.operator_retries, r.operator_aborts, r.operator_repairs,
      r.network.sent, r.network.lost, r.network.duplicated, r.network.slow,
      absl::ToDoubleSeconds(r.fault_phase), absl::ToDoubleSeconds(r.time_to_rest), r.events);
  if (options.etcd_log) {
    absl::StrAppend(&out,
                    absl::StrFormat("  etcd: %d takeovers, %d pauses of the owner, %d etcd "
                                    "outages, %d owners cut off from etcd, %d space alarms, %d "
                                    "processes stopped (the space lost, or the log failed)\n",
                                    r.takeovers, r.pauses, r.etcd_outages, r.etcd_cut_offs,
                                    r.space_alarms, r.fail_stops));
  }
  if (r.ok) return out;
  for (const std::string& v : r.violations) absl::StrAppend(&out, "  VIOLATION ", v, "\n");
  absl::StrAppend(&out, "  replay: txsim ", ReplayFlags(options), " --trace\n");
  absl::StrAppend(&out, "  (add --trace_filter=<txid> to follow one transaction)\n");
  absl::StrAppend(&out, "  the last ", r.trace_tail.size(),
                  " trace lines up to the first violation:\n");
  for (const std::string& line : r.trace_tail) absl::StrAppend(&out, "    ", line, "\n");
  return out;
}

}  // namespace txcoord::sim
