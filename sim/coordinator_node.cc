#include "sim/coordinator_node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/records.h"
#include "coordinator/recovery_state.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

using coordinator::BranchRef;

namespace {

absl::Status NotRunning() { return absl::UnavailableError("coordinator is down"); }

}  // namespace

// The event loop as one process's Scheduler: a timer of a process that
// crashed never runs, since the runtime it would call is gone.
class CoordinatorNode::ProcessScheduler final : public Scheduler {
 public:
  explicit ProcessScheduler(EventLoop* loop) : loop_(loop) {}
  ~ProcessScheduler() override { *alive_ = false; }
  ProcessScheduler(const ProcessScheduler&) = delete;
  ProcessScheduler& operator=(const ProcessScheduler&) = delete;

  absl::Time Now() override { return loop_->Now(); }
  TimerId Schedule(absl::Time at, std::function<void()> fn) override {
    return loop_->Schedule(at, [alive = alive_, fn = std::move(fn)] {
      if (*alive) fn();
    });
  }
  void Cancel(TimerId id) override { loop_->Cancel(id); }

 private:
  EventLoop* const loop_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// One coordinator process. Members go in reverse order: the runtime first,
// then what it calls.
struct CoordinatorNode::Process {
  Process(EventLoop* loop, Network* net, NodeId id, uint64_t incarnation)
      : incarnation(incarnation),
        scheduler(loop),
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
  std::unique_ptr<SimWal> log;
  std::unique_ptr<coordinator::Runtime> runtime;
};

CoordinatorNode::CoordinatorNode(EventLoop* loop, Network* net, History* history, NodeId id,
                                 const CoordinatorNodeOptions& options)
    : loop_(loop), net_(net), history_(history), id_(id), options_(options) {}

CoordinatorNode::~CoordinatorNode() = default;

void CoordinatorNode::set_sync_failure(double p) {
  options_.log.sync_failure = p;
  if (process_) process_->log->set_sync_failure(p);
}

void CoordinatorNode::AddParticipant(const std::string& endpoint, ParticipantNode* node) {
  endpoints_[endpoint] = node;
}

absl::Status CoordinatorNode::Start() {
  ++epoch_;
  const uint64_t incarnation = ++incarnation_;
  coordinator::RuntimeOptions runtime_options;
  runtime_options.engine = options_.engine;
  runtime_options.engine.epoch = epoch_;
  runtime_options.engine.random_seed = loop_->rng()();
  runtime_options.phase2_rpc_timeout = options_.phase2_rpc_timeout;
  runtime_options.abort_rpc_timeout = options_.abort_rpc_timeout;
  runtime_options.on_decided = [this](const std::string& txid, bool committed) {
    loop_->Trace(absl::StrCat("coord DECIDED ", txid, committed ? " COMMITTED" : " ABORTED"));
    history_->CoordinatorDecided(txid, committed);
  };
  coordinator::RecoveryState recovery(runtime_options.engine.retention, loop_->now());
  absl::Status replayed = SimWal::Recover(&disk_, [&](const wal::Record& record) {
    if (absl::Status s = recovery.Apply(record.type, record.payload); !s.ok()) {
      history_->Violation(absl::StrCat("unreadable log record: ", s.ToString()));
    }
  });
  if (!replayed.ok()) return replayed;

  auto process = std::make_unique<Process>(loop_, net_, id_, incarnation);
  Process* p = process.get();
  for (const auto& [endpoint, node] : endpoints_) p->transport.AddParticipant(endpoint, node);
  p->log = std::make_unique<SimWal>(
      loop_, &disk_, options_.log, [p] { return p->runtime->CheckpointRecords(); },
      [this] {
        if (on_log_failure_) on_log_failure_();
      });
  p->runtime = std::make_unique<coordinator::Runtime>(runtime_options, p->log.get(),
                                                      &p->participants, &p->scheduler);
  process_ = std::move(process);
  net_->Restart(id_);
  loop_->Trace(absl::StrCat("coord START epoch ", epoch_, ", ", recovery.unfinished().size(),
                            " commit(s) to re-drive, ", recovery.one_phase().size(),
                            " one-phase branch(es) to ask"));
  p->runtime->RecoverAsync(recovery, [this, incarnation](absl::Status ready) {
    if (process_ == nullptr || process_->incarnation != incarnation) return;
    loop_->Trace(ready.ok() ? "coord READY"
                            : absl::StrCat("coord cannot start: ", ready.ToString()));
  });
  return absl::OkStatus();
}

void CoordinatorNode::Crash() {
  if (!running()) return;
  loop_->Trace(absl::StrCat("coord CRASH (epoch ", epoch_, ")"));
  net_->Crash(id_);
  process_.reset();
  disk_.Crash(loop_->rng());
}

size_t CoordinatorNode::open_transactions() const {
  return process_ ? process_->runtime->open_transactions() : 0;
}

std::vector<std::string> CoordinatorNode::DescribeOpen() const {
  std::vector<std::string> lines;
  if (!process_) return lines;
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
  if (!process_) return NotRunning();
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
  if (!process_) return NotRunning();
  return process_->runtime->Begin(timeout);
}

absl::Status CoordinatorNode::Enlist(const std::string& txid, const BranchRef& branch,
                                     bool prepared) {
  if (!process_) return NotRunning();
  absl::Status status = process_->runtime->Enlist(txid, branch, prepared);
  loop_->Trace(absl::StrCat("coord Enlist ", txid, " ", branch.participant,
                            prepared ? " (prepared)" : "", ": ",
                            status.ok() ? "OK" : absl::StatusCodeToString(status.code())));
  return status;
}

void CoordinatorNode::Commit(const std::string& txid, absl::Time deadline,
                             coordinator::Runtime::CommitCallback reply) {
  if (!process_) return reply(NotRunning());
  process_->runtime->CommitAsync(txid, deadline, std::move(reply));
}

absl::Status CoordinatorNode::Abort(const std::string& txid) {
  if (!process_) return NotRunning();
  return process_->runtime->Abort(txid);
}

absl::StatusOr<coordinator::Outcome> CoordinatorNode::QueryOutcome(const std::string& txid,
                                                                   const std::string& participant) {
  if (!process_) return NotRunning();
  absl::StatusOr<coordinator::Outcome> outcome = process_->runtime->QueryOutcome(txid, participant);
  if (outcome.ok() && *outcome != coordinator::Outcome::kPending) {
    history_->OutcomeAnswered(txid, participant, *outcome == coordinator::Outcome::kCommitted);
  }
  return outcome;
}

absl::StatusOr<coordinator::ListPage> CoordinatorNode::List(const coordinator::ListFilter& filter) {
  if (!process_) return NotRunning();
  return process_->runtime->List(filter);
}

absl::StatusOr<coordinator::AdminResult> CoordinatorNode::RetryPhase2(const std::string& txid) {
  if (!process_) return NotRunning();
  return process_->runtime->RetryPhase2(txid);
}

absl::StatusOr<coordinator::AdminResult> CoordinatorNode::ForceAbort(const std::string& txid,
                                                                     const std::string& reason) {
  if (!process_) return NotRunning();
  return process_->runtime->ForceAbort(txid, reason);
}

void CoordinatorNode::MarkBranchDone(const std::string& txid, const std::string& participant,
                                     const std::string& note,
                                     coordinator::Runtime::AdminCallback done) {
  if (!process_) return done(NotRunning());
  process_->runtime->MarkBranchDoneAsync(txid, participant, note, std::move(done));
}

}  // namespace txcoord::sim
