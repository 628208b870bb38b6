// Participant: opening the database, restoring prepared branches, and the
// branch lifecycle after Execute (Prepare, Commit, Abort, one-phase commit,
// idle reaping). Execute lives in participant_execute.cc.
#include "participant/participant.h"

#include <algorithm>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/failpoint.h"
#include "common/logging.h"
#include "participant/changeset.h"
#include "participant/internal_tables.h"
#include "participant/lock_keys.h"
#include "participant/participant_impl.h"
#include "participant/participant_observer.h"

namespace txcoord::participant {
namespace {

// How often stored one-phase outcomes past their retention are deleted.
constexpr absl::Duration kPruneInterval = absl::Minutes(1);

// How often the maintenance runs: a quarter of the idle timeout, within
// bounds, so that an idle branch goes within 25% of its timeout.
absl::Duration MaintenanceInterval(absl::Duration branch_idle_timeout) {
  return branch_idle_timeout > absl::ZeroDuration()
             ? std::clamp(branch_idle_timeout / 4, absl::Milliseconds(10), absl::Seconds(10))
             : kPruneInterval;
}

uint64_t RandomToken() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

Participant::Impl::Impl(const ParticipantOptions& options, Enlister* enlister, SqliteDb db)
    : options_(options),
      limits_{options.max_rows_per_statement, options.max_result_bytes, options.max_statement_time},
      policy_{options.default_lock_timeout, options.max_statement_time,
              options.branch_idle_timeout},
      enlister_(enlister),
      db_(std::move(db)),
      applier_(db_.get()),
      statements_(db_.get()),
      authorizer_(&schema_),
      next_token_(options.branch_token_seed != 0 ? options.branch_token_seed : RandomToken()),
      local_id_prefix_(
          absl::StrCat("local/", options.name, "/", absl::Hex(RandomToken(), absl::kZeroPad16))),
      liveness_(std::make_shared<Liveness>()) {
  absl::MutexLock lock(&liveness_->mu);
  liveness_->impl = this;
}

Participant::Impl::~Impl() {
  if (vote_scope_ != nullptr) vote_scope_->Close();
  if (maintenance_ != nullptr) maintenance_->Close();
  {
    absl::MutexLock lock(&mu_);
    if (!deferred_votes_.empty()) {
      // Their Executes answered; their Commits abort after the
      // coordinator's prepare timeout, or find the branches in doubt after
      // a restart (docs/protocol.md, "Deferred votes").
      TXLOG(WARNING) << "closing with " << deferred_votes_.size()
                     << " deferred vote(s) not sent, the first for txid="
                     << deferred_votes_.front()->txid;
    }
  }
  absl::MutexLock lock(&liveness_->mu);
  liveness_->impl = nullptr;
}

absl::Status Participant::Impl::Init() {
  {
    absl::MutexLock lock(&mu_);
    sqlite3* d = db();
    sqlite3_db_config(d, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
    // Defensive mode forbids writable_schema and other ways to corrupt the
    // file through SQL.
    sqlite3_db_config(d, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_busy_timeout(d, static_cast<int>(absl::ToInt64Milliseconds(options_.busy_timeout)));

    absl::StatusOr<Statement> mode = Statement::Prepare(d, "PRAGMA journal_mode=WAL");
    if (!mode.ok()) return mode.status();
    if (absl::StatusOr<int> rc = mode->Step(); !rc.ok()) return rc.status();
    if (mode->ColumnText(0) != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          options_.db_path, ": cannot use WAL journal mode (got ", mode->ColumnText(0), ")"));
    }
    mode = Statement();
    // NORMAL: SQLite writes a commit's WAL frames without syncing them;
    // GroupCommit syncs the WAL outside this mutex, once for every commit made
    // meanwhile, and nothing that promises a commit (a YES vote, a phase-2
    // acknowledgement, a one-phase outcome, a local write) is answered
    // before that (MakeDurable). Checkpoints still sync.
    absl::Status status = ExecSql(d, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    if (!status.ok()) return status;
    status = wal_sync_.Attach(d);
    if (!status.ok()) return status;
    authorizer_.Install(d);
    status = CreateInternalTables(d);
    if (!status.ok()) return status;
    last_prune_ = Now();
    if (absl::StatusOr<int64_t> pruned = PruneOutcomes(d, last_prune_ - options_.outcome_retention);
        !pruned.ok()) {
      return pruned.status();
    }
    status = RestorePreparedBranches();
    if (!status.ok()) return status;
  }
  if (options_.scheduler != nullptr) {
    vote_scope_ = std::make_unique<ScheduledScope>(
        options_.vote_scheduler != nullptr ? options_.vote_scheduler : options_.scheduler);
    maintenance_ = std::make_unique<ScheduledScope>(options_.scheduler);
    maintenance_->After(MaintenanceInterval(policy().branch_idle_timeout), [this] { Maintain(); });
  }
  return absl::OkStatus();
}

absl::Status Participant::Impl::RestorePreparedBranches() {
  absl::Status status = schema_.Refresh(db(), &statements_);
  if (!status.ok()) return status;
  absl::StatusOr<std::vector<StoredBranch>> stored = LoadPreparedBranches(db());
  if (!stored.ok()) return stored.status();
  for (StoredBranch& row : *stored) {
    auto branch = std::make_shared<Branch>();
    branch->txid = std::move(row.txid);
    branch->coordinator = std::move(row.coordinator);
    branch->changeset = std::move(row.changeset);
    absl::StatusOr<std::vector<OutboxMessage>> messages = DecodeMessages(row.messages);
    if (!messages.ok()) {
      return absl::DataLossError(
          absl::StrCat("prepared branch ", branch->txid, ": ", messages.status().message()));
    }
    branch->messages = *std::move(messages);
    branch->token = row.branch_token;
    branch->prepared = true;
    branch->enlisted = true;
    branch->prepared_at = row.prepared_at;
    branch->last_used = Now();
    // A branch that cannot get its locks back is still kept: dropping it
    // would break its YES vote outright. Commit then reports the problem.
    absl::StatusOr<std::vector<LockKey>> keys =
        LockKeysForChangeset(db(), schema_, branch->changeset, branch->txid, &statements_);
    if (!keys.ok()) {
      TXLOG(ERROR) << "txid=" << branch->txid
                   << " prepared branch's rows cannot be locked again: " << keys.status();
    } else if (std::optional<LockConflict> conflict = locks_.TryAcquire(branch->txid, *keys)) {
      TXLOG(ERROR) << "txid=" << branch->txid << " prepared branch conflicts with prepared txid "
                   << conflict->holder << " on " << conflict->description
                   << "; its rows are not locked";
    }
    branches_[branch->txid] = branch;
  }
  if (!stored->empty()) {
    TXLOG(INFO) << "restored " << stored->size() << " prepared branches";
  }
  return absl::OkStatus();
}

Participant::Impl::BranchPtr Participant::Impl::FindLocked(const std::string& txid) {
  auto it = branches_.find(txid);
  return it == branches_.end() ? nullptr : it->second;
}

void Participant::Impl::DropLocked(const BranchPtr& branch) {
  // Invariant: a branch ends once, while it is the txid's branch. Locks are
  // held under the txid, so ending a branch twice would free the locks of
  // the branch that replaced it.
  auto it = branches_.find(branch->txid);
  TXCOORD_CHECK(!branch->dropped && it != branches_.end() && it->second == branch)
      << "txid=" << branch->txid << " branch ended twice, or is not the txid's branch";
  branch->dropped = true;
  branches_.erase(it);
  locks_.ReleaseAll(branch->txid);
  branch_released_.SignalAll();
}

absl::Status Participant::Impl::BeginWithSchemaLocked(WriteTransaction& tx) {
  absl::Status status = tx.Begin();
  if (!status.ok()) return status;
  status = schema_.Refresh(db(), &statements_);
  if (!status.ok()) return status;
  kept_statements_.FollowSchema(schema_.version());
  return absl::OkStatus();
}

absl::Status Participant::Impl::PrepareLocked(Branch& branch,
                                              std::unique_ptr<WriteTransaction> open) {
  // Every caller answers a prepared branch (YES, or "prepared meanwhile")
  // under the same lock hold before coming here: a branch is prepared once.
  TXCOORD_CHECK(!branch.prepared && !branch.dropped)
      << "txid=" << branch.txid << " prepared twice, or after it ended";
  std::unique_ptr<WriteTransaction> tx = std::move(open);
  bool trial = true;
  absl::Status status;
  if (tx == nullptr) {
    tx = std::make_unique<WriteTransaction>(db(), &statements_);
    status = BeginWithSchemaLocked(*tx);
    if (!status.ok()) return status;
  } else {
    trial = !AppliesAsRecorded(schema_, branch.changeset);
  }
  if (trial) {
    // The trial apply proves the promise holds now; the locks keep it true.
    status = statements_.Run("SAVEPOINT txcoord_trial");
    if (!status.ok()) return status;
    absl::Status applied = applier_.Apply(schema_, branch.changeset);
    status = statements_.Run("ROLLBACK TO txcoord_trial");
    if (status.ok()) status = statements_.Run("RELEASE txcoord_trial");
    if (!applied.ok()) return applied;
    if (!status.ok()) return status;
  }
  const absl::Time now = Now();
  status = InsertPreparedBranch(statements_, {branch.txid, branch.coordinator, branch.changeset,
                                              now, branch.token, EncodeMessages(branch.messages)});
  if (!status.ok()) return status;
  status = tx->Commit();
  if (!status.ok()) return status;
  branch.prepared = true;
  branch.prepared_at = now;
  return absl::OkStatus();
}

bool Participant::Impl::RollBackIfNotTheEnlistedBranchLocked(const BranchPtr& branch,
                                                             uint64_t token) {
  // Token 0 from the coordinator: one from before tokens; nothing to
  // compare. (A branch restored with token 0 was enlisted with 0 too, and
  // the coordinator sends back what it was enlisted with.)
  if (token == 0 || token == branch->token) return false;
  // This branch started after the enlisted one was lost; the coordinator
  // never held its vote under this token, so it can never commit it.
  TXLOG(WARNING) << "txid=" << branch->txid << " the coordinator asks about branch token " << token
                 << " but this branch is " << branch->token
                 << " (the earlier branch was lost): rolling back";
  if (absl::Status status = AbortLocked(branch, RollbackReason::kReplaced); !status.ok()) {
    TXLOG(ERROR) << "txid=" << branch->txid << " rolling back a replaced branch: " << status;
  }
  return true;
}

absl::StatusOr<Vote> Participant::Impl::Prepare(const std::string& txid, uint64_t branch_token) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  if (branch == nullptr) {
    TXLOG(INFO) << "txid=" << txid << " unknown branch (lost or rolled back) votes NO";
    return Vote::kNo;
  }
  if (RollBackIfNotTheEnlistedBranchLocked(branch, branch_token)) return Vote::kNo;
  if (branch->prepared) return Vote::kYes;
  if (!branch->HasWrites()) {
    DropLocked(branch);
    return Vote::kReadOnly;
  }
  if (absl::Status status = PrepareLocked(*branch); !status.ok()) {
    TXLOG(WARNING) << "txid=" << txid << " votes NO: " << status;
    DropLocked(branch);
    return Vote::kNo;
  }
  return Vote::kYes;
}

absl::Status Participant::Impl::CommitPreparedLocked(const BranchPtr& branch, bool record_outcome,
                                                     const StoredHeuristic* heuristic) {
  // Every caller found the branch live and prepared under this lock hold.
  TXCOORD_CHECK(branch->prepared && !branch->dropped)
      << "txid=" << branch->txid << " committed as prepared while "
      << (branch->dropped ? "ended" : "not prepared");
  WriteTransaction tx(db(), &statements_);
  absl::Status status = BeginWithSchemaLocked(tx);
  if (!status.ok()) return status;
  if (absl::Status applied = applier_.Apply(schema_, branch->changeset); !applied.ok()) {
    // The locks should have made this impossible: keep the branch for the
    // operator rather than commit half of it.
    TXLOG(ERROR) << "txid=" << branch->txid
                 << " prepared branch failed to apply at commit; kept in doubt: " << applied;
    return absl::InternalError(
        absl::StrCat("prepared branch ", branch->txid, " failed to apply: ", applied.message()));
  }
  status = DeletePreparedBranch(statements_, branch->txid);
  if (status.ok()) status = InsertBranchMessagesLocked(*branch);
  if (status.ok() && record_outcome) {
    status = InsertOutcome(statements_, branch->txid, Outcome::kCommitted, Now());
  }
  if (status.ok() && heuristic != nullptr) status = InsertHeuristic(db(), *heuristic);
  if (status.ok()) {
    // A read may see a phase-2 apply before it is durable (GroupCommit::
    // SetReadSafe): should a power loss take it back, the branch is still
    // prepared, and the coordinator, which holds the outcome until this
    // agent's acknowledgement (sent after a sync), has it applied again.
    // Not a one-phase or an operator's commit: nothing else holds those.
    const bool read_safe = !record_outcome && heuristic == nullptr;
    wal_sync_.SetReadSafe(read_safe);
    status = tx.Commit();
    wal_sync_.SetReadSafe(false);
  }
  if (!status.ok()) return status;
  NotifyOutboxLocked(branch->messages.size());
  DropLocked(branch);
  if (options_.observer != nullptr) options_.observer->OnCommit();
  return absl::OkStatus();
}

absl::Status Participant::Impl::Commit(const std::string& txid) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  // Committed before, or never here; or decided by an operator.
  if (branch == nullptr) return CheckHeuristicLocked(txid, Outcome::kCommitted);
  if (!branch->prepared) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch ", txid, " is not prepared: Prepare it first, or use CommitOnePhase"));
  }
  return CommitPreparedLocked(branch, /*record_outcome=*/false);
}

absl::Status Participant::Impl::AbortLocked(const BranchPtr& branch, RollbackReason reason) {
  if (branch->prepared) {
    absl::Status status = DeletePreparedBranch(statements_, branch->txid);
    if (!status.ok()) return status;
  }
  DropLocked(branch);
  if (options_.observer != nullptr) options_.observer->OnAbort(reason);
  return absl::OkStatus();
}

absl::Status Participant::Impl::Abort(const std::string& txid, RollbackReason why) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  if (branch == nullptr) return CheckHeuristicLocked(txid, Outcome::kAborted);
  return AbortLocked(branch, why);
}

absl::StatusOr<Outcome> Participant::Impl::CommitOnePhase(const std::string& txid,
                                                          uint64_t branch_token) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  if (branch == nullptr) {
    absl::StatusOr<std::optional<Outcome>> stored = LookupOutcome(db(), txid);
    if (!stored.ok()) return stored.status();
    return stored->value_or(Outcome::kAborted);
  }
  if (RollBackIfNotTheEnlistedBranchLocked(branch, branch_token)) {
    // The branch asked about may have committed before a later Execute
    // started this other one: its stored outcome answers, not the
    // replacement's rollback.
    absl::StatusOr<std::optional<Outcome>> stored = LookupOutcome(db(), txid);
    if (!stored.ok()) return stored.status();
    return stored->value_or(Outcome::kAborted);
  }
  if (branch->prepared) {
    absl::Status status = CommitPreparedLocked(branch, /*record_outcome=*/true);
    if (!status.ok()) return status;
    return Outcome::kCommitted;
  }
  WriteTransaction tx(db(), &statements_);
  absl::Status status = BeginWithSchemaLocked(tx);
  if (!status.ok()) return status;
  if (absl::Status applied = applier_.Apply(schema_, branch->changeset); !applied.ok()) {
    TXLOG(WARNING) << "txid=" << txid << " one-phase commit aborted: " << applied;
    tx.Rollback();
    DropLocked(branch);
    if (options_.observer != nullptr) options_.observer->OnAbort(RollbackReason::kOnePhaseFailed);
    return Outcome::kAborted;
  }
  // Stored in the same transaction, so that a retry learns the same answer.
  status = InsertOutcome(statements_, txid, Outcome::kCommitted, Now());
  if (status.ok()) status = InsertBranchMessagesLocked(*branch);
  if (status.ok()) status = tx.Commit();
  if (!status.ok()) return status;
  NotifyOutboxLocked(branch->messages.size());
  DropLocked(branch);
  if (options_.observer != nullptr) options_.observer->OnCommit();
  return Outcome::kCommitted;
}

std::vector<PreparedBranch> Participant::Impl::ListPrepared() {
  std::vector<PreparedBranch> prepared;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [txid, branch] : branches_) {
      if (branch->prepared) {
        prepared.push_back({txid, branch->coordinator, branch->prepared_at, branch->vote_refused,
                            branch->vote_unsent, branch->vote_sending});
      }
    }
  }
  std::sort(prepared.begin(), prepared.end(), [](const PreparedBranch& a, const PreparedBranch& b) {
    return std::tie(a.prepared_at, a.txid) < std::tie(b.prepared_at, b.txid);
  });
  return prepared;
}

std::vector<std::string> Participant::Impl::ListIdleEnlisted(absl::Time idle_since) {
  std::vector<std::string> idle;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [txid, branch] : branches_) {
      if (!branch->prepared && branch->enlist_taken && !branch->busy && !branch->dropped &&
          branch->last_used <= idle_since) {
        idle.push_back(txid);
      }
    }
  }
  std::sort(idle.begin(), idle.end());
  return idle;
}

size_t Participant::Impl::BranchCount() {
  absl::MutexLock lock(&mu_);
  return branches_.size();
}

absl::Status Participant::Impl::SetPolicy(const ParticipantPolicy& policy) {
  if (policy.default_lock_timeout <= absl::ZeroDuration() ||
      policy.max_statement_time < absl::ZeroDuration() ||
      policy.branch_idle_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "participant policy: lock timeout ", absl::FormatDuration(policy.default_lock_timeout),
        " must be positive, statement time ", absl::FormatDuration(policy.max_statement_time),
        " and idle timeout ", absl::FormatDuration(policy.branch_idle_timeout), " not negative"));
  }
  absl::MutexLock lock(&policy_mu_);
  policy_ = policy;
  return absl::OkStatus();
}

ResultLimits Participant::Impl::Limits() const {
  ResultLimits limits = limits_;
  limits.max_run_time = policy().max_statement_time;
  return limits;
}

size_t Participant::Impl::ReapIdleBranches(absl::Time now) {
  const absl::Duration idle_timeout = policy().branch_idle_timeout;
  absl::flat_hash_map<std::string, uint64_t> serving;
  {
    absl::MutexLock lock(&epochs_mu_);
    serving = serving_epochs_;
  }
  absl::MutexLock lock(&mu_);
  return RollBackStaleLocked(now, idle_timeout, serving);
}

size_t Participant::Impl::RollBackStaleLocked(
    absl::Time now, absl::Duration idle_timeout,
    const absl::flat_hash_map<std::string, uint64_t>& serving) {
  struct Reaped {
    BranchPtr branch;
    RollbackReason reason;
    std::string why;
  };
  std::vector<Reaped> reaped;
  for (const auto& [txid, branch] : branches_) {
    if (branch->prepared || branch->busy) continue;
    if (idle_timeout > absl::ZeroDuration() && now - branch->last_used > idle_timeout) {
      reaped.push_back({branch, RollbackReason::kIdle,
                        absl::StrCat("idle for over ", absl::FormatDuration(idle_timeout))});
      continue;
    }
    const auto it = serving.find(branch->coordinator);
    if (it != serving.end() && branch->epoch < it->second) {
      reaped.push_back(
          {branch, RollbackReason::kEpochLeftBehind, EpochLeftBehind(*branch, it->second)});
    }
  }
  // In txid order rather than the map's, which differs from run to run: the
  // simulator replays a seed exactly.
  std::sort(reaped.begin(), reaped.end(),
            [](const Reaped& a, const Reaped& b) { return a.branch->txid < b.branch->txid; });
  for (const Reaped& r : reaped) RollBackUnpreparedLocked(r.branch, r.reason, r.why);
  return reaped.size();
}

const char* RollbackReasonLabel(RollbackReason reason) {
  switch (reason) {
    case RollbackReason::kAborted:
      return "aborted";
    case RollbackReason::kEnlistRefused:
      return "enlist_refused";
    case RollbackReason::kReplaced:
      return "replaced";
    case RollbackReason::kOnePhaseFailed:
      return "one_phase_failed";
    case RollbackReason::kHeuristic:
      return "heuristic";
    case RollbackReason::kIdle:
      return "idle";
    case RollbackReason::kReleased:
      return "released";
    case RollbackReason::kEpochLeftBehind:
      return "epoch";
    case RollbackReason::kAskedAborted:
      return "asked";
  }
  return "unknown";
}

void Participant::Impl::RollBackUnpreparedLocked(const BranchPtr& branch, RollbackReason reason,
                                                 absl::string_view why) {
  // A prepared branch promised its YES: only the coordinator's outcome
  // (or an operator's) ends it.
  TXCOORD_CHECK(!branch->prepared) << "txid=" << branch->txid << " prepared branch rolled back";
  TXLOG(INFO) << "txid=" << branch->txid << " unprepared branch " << why << ": rolled back";
  DropLocked(branch);
  if (options_.observer != nullptr) options_.observer->OnAbort(reason);
}

ReleaseResult Participant::Impl::Release(const std::string& txid) {
  absl::MutexLock lock(&mu_);
  BranchPtr branch = FindLocked(txid);
  if (branch == nullptr) {
    return {false, absl::StrCat("no branch of ", txid,
                                " here (never written, or already ended): nothing to release")};
  }
  if (branch->prepared) {
    return {false,
            absl::StrCat("branch ", txid, " is prepared: only the coordinator's outcome ends it")};
  }
  // A busy branch too: its Execute sees `dropped` and fails with ABORTED.
  RollBackUnpreparedLocked(branch, RollbackReason::kReleased, "released by the client");
  return {true, absl::StrCat("unprepared branch ", txid, " rolled back")};
}

void Participant::Impl::Maintain() {
  const absl::Time now = Now();
  ReapIdleBranches(now);
  if (now - last_prune_ >= kPruneInterval) {
    last_prune_ = now;
    absl::MutexLock lock(&mu_);
    if (absl::StatusOr<int64_t> pruned = PruneOutcomes(db(), now - options_.outcome_retention);
        !pruned.ok()) {
      TXLOG(WARNING) << "pruning one-phase outcomes: " << pruned.status();
    }
  }
  maintenance_->After(MaintenanceInterval(policy().branch_idle_timeout), [this] { Maintain(); });
}

Participant::Participant(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Participant::~Participant() = default;

absl::StatusOr<std::unique_ptr<Participant>> Participant::Open(const ParticipantOptions& options,
                                                               Enlister* enlister) {
  if (options.db_path.empty()) return absl::InvalidArgumentError("db_path is empty");
  if (enlister == nullptr) return absl::InvalidArgumentError("enlister is null");
  sqlite3* raw = nullptr;
  // Without SQLite's own mutex around every call on the connection: every
  // use holds Impl::mu_ (db() requires it), and GroupCommit syncs through a
  // file handle of its own.
  const int rc =
      sqlite3_open_v2(options.db_path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return SqliteStatus(raw, rc, absl::StrCat("opening ", options.db_path));
  auto impl = std::make_unique<Impl>(options, enlister, std::move(db));
  if (absl::Status status = impl->Init(); !status.ok()) return status;
  return std::unique_ptr<Participant>(new Participant(std::move(impl)));
}

// Every answer waits until what it saw is durable: a local batch may have
// written, and any batch may have read rows of a commit (a one-phase
// commit, another local batch) whose sync is still in flight. Otherwise a
// power loss could take back data a client already acted on. A phase-2
// apply is not waited for: a power loss takes it back only until the agent
// applies it again after its restart (GroupCommit::SetReadSafe). One with
// a deferred vote does not wait (below).
absl::StatusOr<ExecuteResult> Participant::Execute(const std::string& txid,
                                                   const std::vector<SqlStatement>& statements,
                                                   bool prepare, absl::Duration lock_timeout,
                                                   absl::Time call_deadline) {
  ExecuteOptions options;
  options.prepare = prepare;
  options.lock_timeout = lock_timeout;
  options.call_deadline = call_deadline;
  return Execute(txid, statements, std::move(options));
}
absl::StatusOr<ExecuteResult> Participant::Execute(const std::string& txid,
                                                   const std::vector<SqlStatement>& statements,
                                                   ExecuteOptions options) {
  const bool prepare = options.prepare;
  ParticipantObserver* const observer = impl_->observer();
  const absl::Time start = observer == nullptr ? absl::InfinitePast() : impl_->Now();
  absl::StatusOr<ExecuteResult> result = impl_->Execute(txid, statements, std::move(options));
  // A deferred vote's answer may come first: nothing commits the branch
  // before a sync covers everything the call saw (its vote leaves after
  // one; a Prepare, a one-phase or a heuristic commit each wait for one).
  // A YES vote sent or signed here left after such a sync
  // (DurableBeforeVote); a commit made since is another call's to wait
  // for. Any other call committed nothing, or (a local batch) a commit
  // WaitReadable covers.
  const bool waited_for_vote = prepare && result.ok() && result->vote == Vote::kYes;
  if (result.ok() && !result->vote_deferred && !waited_for_vote) {
    if (absl::Status durable = impl_->MakeReadable(); !durable.ok()) result = durable;
  }
  if (observer == nullptr) return result;
  observer->OnExecute(impl_->Now() - start, result.status());
  if (prepare && result.ok()) observer->OnPrepare(result->vote);
  return result;
}
// A single Prepare or Commit is a batch of one: one path to durability.
absl::StatusOr<Vote> Participant::Prepare(const std::string& txid, uint64_t branch_token) {
  BatchAnswer answer = std::move(RunBatch({{BranchOp::kPrepare, txid, branch_token}}).front());
  if (!answer.status.ok()) return answer.status;
  return answer.vote;
}
absl::Status Participant::Commit(const std::string& txid) {
  return RunBatch({{BranchOp::kCommit, txid}}).front().status;
}
absl::Status Participant::Abort(const std::string& txid, RollbackReason why) {
  return impl_->Abort(txid, why);
}
absl::StatusOr<Outcome> Participant::CommitOnePhase(const std::string& txid,
                                                    uint64_t branch_token) {
  absl::StatusOr<Outcome> outcome = impl_->CommitOnePhase(txid, branch_token);
  if (!outcome.ok()) return outcome;
  if (absl::Status durable = impl_->MakeDurable(); !durable.ok()) return durable;
  return outcome;
}
std::vector<BatchAnswer> Participant::RunBatch(const std::vector<BatchEntry>& entries) {
  std::vector<BatchAnswer> answers(entries.size());
  // Entries whose answer promises something durable: a YES vote, a commit
  // (also one found done before: what it says may not be synced yet).
  std::vector<size_t> promises;
  for (size_t i = 0; i < entries.size(); ++i) {
    const BatchEntry& entry = entries[i];
    BatchAnswer& answer = answers[i];
    switch (entry.op) {
      case BranchOp::kPrepare: {
        absl::StatusOr<Vote> vote = impl_->Prepare(entry.txid, entry.branch_token);
        answer.status = vote.status();
        if (vote.ok()) answer.vote = *vote;
        if (vote.ok() && *vote == Vote::kYes) promises.push_back(i);
        break;
      }
      case BranchOp::kCommit:
        answer.status = impl_->Commit(entry.txid);
        if (answer.status.ok()) promises.push_back(i);
        break;
      case BranchOp::kAbort:
        answer.status = impl_->Abort(entry.txid, RollbackReason::kAborted);
        break;
    }
  }
  // A vote (any: NO and READ_ONLY too) is on its transaction's path to a
  // decision; a commit's acknowledgement is not, and may wait for a sync
  // to share.
  const bool votes = std::any_of(entries.begin(), entries.end(),
                                 [](const BatchEntry& e) { return e.op == BranchOp::kPrepare; });
  if (!promises.empty()) {
    const absl::Status durable = votes ? impl_->MakeDurable() : impl_->MakePhase2Durable();
    if (!durable.ok()) {
      for (size_t i : promises) answers[i].status = durable;
    } else if (votes) {
      TXCOORD_FAILPOINT("after-prepare-durable");
    }
  }
  if (impl_->observer() != nullptr) {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].op == BranchOp::kPrepare && answers[i].status.ok()) {
        impl_->observer()->OnPrepare(answers[i].vote);
      }
    }
  }
  return answers;
}
std::vector<PreparedBranch> Participant::ListPrepared() { return impl_->ListPrepared(); }
std::vector<std::string> Participant::ListIdleEnlisted(absl::Time idle_since) {
  return impl_->ListIdleEnlisted(idle_since);
}
bool Participant::SendSignedVote(const std::string& txid) { return impl_->SendSignedVote(txid); }
absl::StatusOr<HeuristicDecision> Participant::ResolveHeuristically(const std::string& txid,
                                                                    Outcome decision,
                                                                    const std::string& reason) {
  absl::StatusOr<HeuristicDecision> decided = impl_->ResolveHeuristically(txid, decision, reason);
  if (!decided.ok()) return decided;
  if (absl::Status durable = impl_->MakeDurable(); !durable.ok()) return durable;
  return decided;
}
absl::StatusOr<std::vector<HeuristicDecision>> Participant::ListHeuristics(bool unsettled_only) {
  return impl_->ListHeuristics(unsettled_only);
}
absl::StatusOr<HeuristicDecision> Participant::RecordCoordinatorOutcome(const std::string& txid,
                                                                        Outcome outcome) {
  absl::StatusOr<HeuristicDecision> recorded = impl_->RecordCoordinatorOutcome(txid, outcome);
  if (!recorded.ok()) return recorded;
  if (absl::Status durable = impl_->MakeDurable(); !durable.ok()) return durable;
  return recorded;
}
size_t Participant::BranchCount() { return impl_->BranchCount(); }
uint64_t Participant::SyncCount() { return impl_->group_commit().syncs(); }
Participant::Phase2Syncs Participant::Phase2SyncCounts() {
  const GroupCommit& sync = impl_->group_commit();
  return {sync.delayed_shared(), sync.delayed_own()};
}
void Participant::SendDeferredVotesNow() { impl_->SendDeferredVotes(); }
const std::string& Participant::name() const { return impl_->name(); }
ParticipantPolicy Participant::policy() { return impl_->policy(); }
absl::Status Participant::SetPolicy(const ParticipantPolicy& policy) {
  return impl_->SetPolicy(policy);
}
size_t Participant::LockCount() { return impl_->LockCount(); }
size_t Participant::ReapIdleBranches(absl::Time now) { return impl_->ReapIdleBranches(now); }
ReleaseResult Participant::Release(const std::string& txid) { return impl_->Release(txid); }

}  // namespace txcoord::participant
