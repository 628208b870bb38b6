#include "coordinator/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/txid.h"
#include "common/vote_proof.h"

namespace txcoord::coordinator {

const char kPresumedAbort[] =
    "not committed: the coordinator holds no commit for it (aborted, or undecided when the "
    "coordinator restarted: presumed abort)";

const char* TxStateName(TxState state) {
  switch (state) {
    case TxState::kActive:
      return "ACTIVE";
    case TxState::kPreparing:
      return "PREPARING";
    case TxState::kCommitting:
      return "COMMITTING";
    case TxState::kCommitted:
      return "COMMITTED";
    case TxState::kAborted:
      return "ABORTED";
  }
  return "?";
}

const char* VoteName(Vote vote) {
  switch (vote) {
    case Vote::kUnknown:
      return "-";
    case Vote::kYes:
      return "YES";
    case Vote::kNo:
      return "NO";
    case Vote::kReadOnly:
      return "READ_ONLY";
  }
  return "?";
}

Engine::Engine(const EngineOptions& options)
    : options_(options), rng_(options.random_seed), retained_(options.retention) {
  // Until Recover says otherwise, nothing is known of earlier epochs.
  if (options_.epoch > 0) retained_.ExpireThrough(ExpiredMark{options_.epoch - 1, UINT64_MAX});
}

void Engine::PruneRetained(absl::Time now) {
  // Every Begin checks the memory bound (a size compare); the window, whose
  // limit scans every open transaction, at most once a second: while an
  // old chunk is held back by an open txid, a scan per Begin would cost
  // O(open) on the hot path for nothing.
  DropExpiredReservations(now);
  const bool window = now >= next_window_check_;
  if (window) next_window_check_ = now + absl::Seconds(1);
  stats_.retained_chunks_dropped += retained_.Prune(window ? now : absl::InfinitePast(), [this] {
    ExpiredMark limit{options_.epoch, next_sequence_ - 1};
    // Reserved txids not used yet may still begin.
    if (!reservations_.empty()) limit = {options_.epoch, reservations_.begin()->first - 1};
    for (const auto& [txid, txn] : txns_) {
      absl::StatusOr<Txid> parsed = ParseTxid(txid);
      if (!parsed.ok()) continue;
      const ExpiredMark before{parsed->epoch, parsed->sequence - 1};
      if (before < limit) limit = before;
    }
    return limit;
  });
}

absl::Status Engine::CheckOwned(const std::string& txid) const {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return parsed.status();
  if (parsed->cluster != options_.cluster_id) {
    return absl::FailedPreconditionError(absl::StrCat("txid ", txid, " belongs to coordinator \"",
                                                      parsed->cluster, "\", not to this one (\"",
                                                      options_.cluster_id, "\")"));
  }
  if (parsed->epoch > options_.epoch) {
    return absl::FailedPreconditionError(
        absl::StrCat("txid ", txid, " has epoch ", parsed->epoch,
                     " but this coordinator is at epoch ", options_.epoch,
                     ": is another coordinator using cluster id \"", options_.cluster_id, "\"?"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Engine::ForgottenOutcome(const std::string& txid) const {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return parsed.status();
  if (parsed->epoch == options_.epoch && parsed->sequence >= next_sequence_) {
    return absl::NotFoundError(
        absl::StrCat("transaction ", txid, " was never begun: this coordinator has not issued it"));
  }
  switch (retained_.Find(parsed->epoch, parsed->sequence)) {
    case RetainedOutcome::kCommitted:
      return true;
    case RetainedOutcome::kNotCommitted:
      return false;
    case RetainedOutcome::kExpired:
      break;
  }
  return absl::OutOfRangeError(absl::StrCat(
      "outcome of transaction ", txid, " expired: it ended before the retention window (",
      absl::FormatDuration(retained_.options().retention),
      ", --outcome_retention) and its outcome is no longer kept; check the participants' "
      "databases"));
}

void Engine::NeverIssue(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok() || parsed->epoch != options_.epoch || parsed->sequence < next_sequence_) return;
  // No agent signs this far beyond a txid it was answered for (each below
  // next_sequence_), so no proof for it exists: nothing to move past.
  if (parsed->sequence - next_sequence_ >= kMaxSignedSequencesAhead) return;
  stats_.txids_skipped += parsed->sequence + 1 - next_sequence_;
  next_sequence_ = parsed->sequence + 1;
}

void Engine::Retain(const std::string& txid, absl::Time now) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok()) return;
  retained_.Add(parsed->epoch, parsed->sequence, now);
}

absl::StatusOr<Engine::Txn*> Engine::Find(const std::string& txid) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    if (done != finished_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("transaction ", txid, " is already ", TxStateName(done->second.state)));
    }
    return absl::NotFoundError(absl::StrCat(
        "transaction ", txid,
        " is unknown (never begun, reserved and not used in time, or aborted and forgotten)"));
  }
  return &it->second;
}

absl::StatusOr<Engine::Txn*> Engine::FindOrBegin(const std::string& txid, absl::Time now,
                                                 Actions* out) {
  absl::StatusOr<Txn*> found = Find(txid);
  if (found.ok() || !absl::IsNotFound(found.status())) return found;
  absl::StatusOr<Txn*> begun = BeginReserved(txid, now, out);
  if (!begun.ok()) return begun.status();
  if (*begun == nullptr) return found;
  return *begun;
}

absl::StatusOr<Engine::Txn*> Engine::BeginReserved(const std::string& txid, absl::Time now,
                                                   Actions* out) {
  DropExpiredReservations(now);  // what is left lives
  std::optional<ReservedSlot> slot = UnusedSlot(txid);
  if (!slot.has_value()) return nullptr;
  if (txns_.size() >= options_.max_open_transactions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many open transactions (", txns_.size(), "); retry later"));
  }
  const absl::Duration timeout = Use(*slot);
  ++stats_.reserved_begun;
  return &StartTxn(txid, timeout == absl::ZeroDuration() ? options_.default_tx_timeout : timeout,
                   now, out);
}

std::optional<Engine::ReservedSlot> Engine::UnusedSlot(const std::string& txid) const {
  if (reservations_.empty()) return std::nullopt;
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (!parsed.ok() || parsed->epoch != options_.epoch) return std::nullopt;
  auto it = reservations_.upper_bound(parsed->sequence);
  if (it == reservations_.begin()) return std::nullopt;
  --it;
  const uint64_t index = parsed->sequence - it->first;
  if (index >= it->second.used.size() || it->second.used[index]) return std::nullopt;
  return ReservedSlot{it->first, index};
}

absl::Duration Engine::Use(const ReservedSlot& slot) {
  auto it = reservations_.find(slot.first);
  Reservation& r = it->second;
  r.used[slot.index] = true;
  --reserved_unused_;
  const absl::Duration timeout = r.timeout;
  if (--r.unused == 0) reservations_.erase(it);
  return timeout;
}

bool Engine::UseUpReserved(const std::string& txid) {
  std::optional<ReservedSlot> slot = UnusedSlot(txid);
  if (!slot.has_value()) return false;
  Use(*slot);
  ++stats_.reserved_unused;
  return true;
}

bool Engine::ReservedUnused(const std::string& txid, absl::Time now) const {
  std::optional<ReservedSlot> slot = UnusedSlot(txid);
  return slot.has_value() && now < reservations_.at(slot->first).expires;
}

void Engine::DropExpiredReservations(absl::Time now) {
  // Every reservation lives reservation_ttl, so they expire in the order
  // they were made: the order of their sequences.
  while (!reservations_.empty() && now >= reservations_.begin()->second.expires) {
    const Reservation& r = reservations_.begin()->second;
    stats_.reserved_unused += r.unused;
    reserved_unused_ -= r.unused;
    reservations_.erase(reservations_.begin());
  }
}

void Engine::DropReservations() { DropExpiredReservations(absl::InfiniteFuture()); }

Engine::Txn& Engine::StartTxn(const std::string& txid, absl::Duration timeout, absl::Time now,
                              Actions* out) {
  Txn& txn = txns_[txid];
  txn.begin = now;
  txn.deadline = now + timeout;
  out->push_back(ArmTimer{TimerId{txid, TimerKind::kDeadline, ""}, txn.deadline});
  return txn;
}

Engine::Branch* Engine::FindBranch(Txn& txn, const std::string& participant) {
  for (Branch& b : txn.branches) {
    if (b.ref.participant == participant) return &b;
  }
  return nullptr;
}

EnginePolicy Engine::policy() const {
  return {options_.default_tx_timeout, options_.prepare_timeout, options_.phase2_backoff_max};
}

absl::Status Engine::SetPolicy(const EnginePolicy& policy) {
  if (policy.default_tx_timeout <= absl::ZeroDuration() ||
      policy.default_tx_timeout > options_.max_tx_timeout ||
      policy.prepare_timeout <= absl::ZeroDuration() ||
      policy.phase2_backoff_max < options_.phase2_backoff_initial) {
    return absl::InvalidArgumentError(absl::StrCat(
        "engine policy: transaction timeout ", absl::FormatDuration(policy.default_tx_timeout),
        " must be above 0 and at most ", absl::FormatDuration(options_.max_tx_timeout),
        ", prepare timeout ", absl::FormatDuration(policy.prepare_timeout),
        " above 0, phase-2 retry cap ", absl::FormatDuration(policy.phase2_backoff_max),
        " at least ", absl::FormatDuration(options_.phase2_backoff_initial)));
  }
  options_.default_tx_timeout = policy.default_tx_timeout;
  options_.prepare_timeout = policy.prepare_timeout;
  options_.phase2_backoff_max = policy.phase2_backoff_max;
  return absl::OkStatus();
}

absl::StatusOr<BeginResult> Engine::Begin(absl::Duration timeout, absl::Time now, Actions* out) {
  if (timeout < absl::ZeroDuration()) return absl::InvalidArgumentError("timeout is negative");
  if (timeout == absl::ZeroDuration()) timeout = options_.default_tx_timeout;
  if (timeout > options_.max_tx_timeout) {
    return absl::InvalidArgumentError(absl::StrCat("timeout ", absl::FormatDuration(timeout),
                                                   " is over the limit of ",
                                                   absl::FormatDuration(options_.max_tx_timeout)));
  }
  if (txns_.size() >= options_.max_open_transactions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many open transactions (", txns_.size(), "); retry later"));
  }
  PruneRetained(now);
  std::string txid = Txid{options_.cluster_id, options_.epoch, next_sequence_++}.ToString();
  const Txn& txn = StartTxn(txid, timeout, now, out);
  return BeginResult{txid, txn.deadline};
}

absl::StatusOr<ReserveResult> Engine::Reserve(uint32_t count, absl::Duration timeout,
                                              absl::Time now) {
  if (count == 0 || count > kMaxReservedTxids) {
    return absl::InvalidArgumentError(
        absl::StrCat("count ", count, " is outside [1, ", kMaxReservedTxids, "]"));
  }
  if (timeout < absl::ZeroDuration()) return absl::InvalidArgumentError("timeout is negative");
  if (timeout > options_.max_tx_timeout) {
    return absl::InvalidArgumentError(absl::StrCat("timeout ", absl::FormatDuration(timeout),
                                                   " is over the limit of ",
                                                   absl::FormatDuration(options_.max_tx_timeout)));
  }
  PruneRetained(now);  // drops expired reservations too
  if (reserved_unused_ + count > options_.max_reserved_txids) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many reserved txids not yet used (", reserved_unused_, "); retry later"));
  }
  const uint64_t first = next_sequence_;
  next_sequence_ += count;
  Reservation& r = reservations_[first];
  r.expires = now + options_.reservation_ttl;
  r.timeout = timeout;
  r.used.assign(count, false);
  r.unused = count;
  stats_.txids_reserved += count;
  reserved_unused_ += count;
  return ReserveResult{options_.cluster_id, options_.epoch, first, count, options_.reservation_ttl};
}

absl::Status Engine::Enlist(const std::string& txid, const BranchRef& branch, bool prepared,
                            absl::Time now, Actions* out, bool named_in_commit) {
  if (!IsValidName(branch.participant)) {
    return absl::InvalidArgumentError(
        "participant name must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  if (!IsValidEndpoint(branch.endpoint)) {
    return absl::InvalidArgumentError(
        "endpoint must be host:port (at most 256 bytes; host of [A-Za-z0-9_.-] or a bracketed "
        "IPv6 address; port 1 to 65535)");
  }
  absl::StatusOr<Txn*> found = FindOrBegin(txid, now, out);
  if (!found.ok()) return found.status();
  Txn& txn = **found;
  Branch* existing = FindBranch(txn, branch.participant);
  if (txn.state == TxState::kPreparing && !txn.logging && !txn.one_phase && existing != nullptr &&
      existing->named) {
    return EnlistNamed(txid, txn, *existing, branch, prepared, now, out);
  }
  if (txn.state != TxState::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid, " is ", TxStateName(txn.state),
                     ": branches can join only while it is ACTIVE"));
  }
  // One incarnation of a branch never changes its token, so any change,
  // to or from 0 (an agent from before tokens, upgraded by a restart)
  // included, means a new branch.
  if (existing != nullptr && branch.token != existing->ref.token) {
    // The agent lost the branch it enlisted first (a restart, an idle
    // rollback) and started another: the first one's writes are gone, so
    // committing would commit half of this participant's work.
    const std::string reason =
        absl::StrCat("participant ", branch.participant,
                     " lost its branch (agent restarted or rolled the idle branch back) and "
                     "enlisted a new one");
    DoAbort(txid, txn, reason, out);
    return absl::AbortedError(absl::StrCat("transaction ", txid, " aborted: ", reason));
  }
  if (existing == nullptr) {
    if (txn.branches.size() >= options_.max_branches) {
      return absl::ResourceExhaustedError(
          absl::StrCat("transaction ", txid, " already has ", txn.branches.size(), " branches"));
    }
    txn.branches.push_back(Branch{branch});
    existing = &txn.branches.back();
  } else {
    existing->ref.endpoint = branch.endpoint;
  }
  existing->named_in_commit = existing->named_in_commit || named_in_commit;
  if (prepared && existing->vote != Vote::kYes) {
    existing->vote = Vote::kYes;
    ++stats_.votes_yes;  // an early prepare's vote
  }
  return absl::OkStatus();
}

absl::Status Engine::EnlistNamed(const std::string& txid, Txn& txn, Branch& b,
                                 const BranchRef& branch, bool prepared, absl::Time now,
                                 Actions* out) {
  if (branch.token != b.ref.token) {
    const std::string reason =
        absl::StrCat("participant ", branch.participant, " enlisted branch token ", branch.token,
                     ", not the one the client's Commit named");
    DoAbort(txid, txn, reason, out);
    return absl::AbortedError(absl::StrCat("transaction ", txid, " aborted: ", reason));
  }
  if (b.awaited) {
    b.awaited = false;
    b.ref.endpoint = branch.endpoint;
  }
  if (b.vote != Vote::kUnknown) return absl::OkStatus();  // a repeat
  if (prepared) {
    b.vote = Vote::kYes;
    ++stats_.votes_yes;  // an early prepare's vote
    MaybeDecide(txid, txn, now, out);
  } else if (!b.prepare_sent) {
    out->push_back(SendPrepare{txid, b.ref, options_.prepare_timeout});
    b.prepare_sent = true;
  }
  return absl::OkStatus();
}

std::string Engine::MatchNamed(Txn& txn, const std::vector<BranchRef>& named) {
  for (Branch& b : txn.branches) {
    auto it = std::find_if(named.begin(), named.end(),
                           [&b](const BranchRef& n) { return n.participant == b.ref.participant; });
    if (it == named.end()) {
      // Enlisted before its Execute answered, by an agent that does not
      // report its branch to the client (one that predates named
      // branches, during an upgrade): the client could not name it, and
      // it commits with the rest as under an unnamed Commit.
      if (!b.named_in_commit) continue;
      return absl::StrCat("participant ", b.ref.participant,
                          " enlisted a branch that the client's Commit did not name");
    }
    if (it->token != b.ref.token) {
      return absl::StrCat("participant ", b.ref.participant, " enlisted branch token ", b.ref.token,
                          " but the client's Commit named ", it->token,
                          " (the agent lost the branch the client wrote in)");
    }
    b.named = true;
  }
  for (const BranchRef& n : named) {
    if (FindBranch(txn, n.participant) != nullptr) continue;
    Branch awaited{BranchRef{n.participant, "", n.token}};
    awaited.awaited = true;
    awaited.named = true;
    txn.branches.push_back(std::move(awaited));
  }
  return "";
}

absl::Status Engine::CheckNamed(const std::vector<BranchRef>& named, size_t max_branches) {
  if (named.size() > max_branches) {
    return absl::InvalidArgumentError(
        absl::StrCat("the Commit names ", named.size(), " branches; at most ", max_branches));
  }
  for (size_t i = 0; i < named.size(); ++i) {
    if (!IsValidName(named[i].participant) || named[i].token == 0) {
      return absl::InvalidArgumentError(
          "a named branch needs a participant of 1 to 128 characters of [A-Za-z0-9_.:-] and a "
          "nonzero branch_token");
    }
    for (size_t j = 0; j < i; ++j) {
      if (named[j].participant == named[i].participant) {
        return absl::InvalidArgumentError(
            absl::StrCat("the Commit names participant ", named[i].participant, " twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::Commit(const std::string& txid, const std::vector<BranchRef>& named,
                            absl::Time now, Actions* out) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  if (absl::Status checked = CheckNamed(named, options_.max_branches); !checked.ok()) {
    return checked;
  }
  Txn* found = nullptr;
  if (auto it = txns_.find(txid); it != txns_.end()) {
    found = &it->second;
  } else if (auto done = finished_.find(txid); done != finished_.end()) {
    out->push_back(Decided{txid, done->second.state == TxState::kCommitted, done->second.reason});
    return absl::OkStatus();
  } else {
    absl::StatusOr<Txn*> begun = BeginReserved(txid, now, out);
    if (!begun.ok()) return begun.status();
    if (*begun == nullptr) {
      absl::StatusOr<bool> committed = ForgottenOutcome(txid);
      if (!committed.ok()) return committed.status();
      out->push_back(Decided{txid, *committed, *committed ? "" : kPresumedAbort});
      return absl::OkStatus();
    }
    found = *begun;
  }
  Txn& txn = *found;
  switch (txn.state) {
    case TxState::kActive:
      if (now >= txn.deadline) {
        DoAbort(txid, txn, "transaction deadline passed before commit", out);
        return absl::OkStatus();
      }
      if (!named.empty()) {
        if (std::string mismatch = MatchNamed(txn, named); !mismatch.empty()) {
          DoAbort(txid, txn, mismatch, out);
          return absl::OkStatus();
        }
      }
      StartPrepare(txid, txn, now, out);
      return absl::OkStatus();
    case TxState::kPreparing:
      return absl::OkStatus();  // the waiter hears the decision
    case TxState::kCommitting:
    case TxState::kCommitted:
      out->push_back(Decided{txid, true, ""});
      return absl::OkStatus();
    case TxState::kAborted:
      out->push_back(Decided{txid, false, txn.reason});
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

void Engine::StartPrepare(const std::string& txid, Txn& txn, absl::Time now, Actions* out) {
  TXCOORD_CHECK(txn.state == TxState::kActive && !txn.logging && !txn.one_phase)
      << "txid=" << txid << " prepare started twice (state " << TxStateName(txn.state) << ")";
  txn.state = TxState::kPreparing;
  if (txn.branches.size() == 1 && txn.branches[0].vote == Vote::kUnknown &&
      !txn.branches[0].awaited) {
    // One branch: let it decide. No prepare round; one forced record first,
    // so that a restart knows whom to ask for the outcome.
    txn.one_phase = true;
    txn.logging = true;
    out->push_back(LogOnePhase{txid, txn.branches[0].ref});
    return;
  }
  bool waiting = false;
  for (Branch& b : txn.branches) {
    if (b.vote != Vote::kUnknown) continue;
    waiting = true;
    if (b.awaited) continue;  // its Enlist brings the endpoint (EnlistNamed)
    out->push_back(SendPrepare{txid, b.ref, options_.prepare_timeout});
    b.prepare_sent = true;
  }
  if (waiting) {
    out->push_back(
        ArmTimer{TimerId{txid, TimerKind::kPrepareTimeout, ""}, now + options_.prepare_timeout});
  }
  MaybeDecide(txid, txn, now, out);
}

void Engine::MaybeDecide(const std::string& txid, Txn& txn, absl::Time now, Actions* out) {
  if (txn.state != TxState::kPreparing || txn.logging || txn.one_phase) return;
  bool any_yes = false;
  for (const Branch& b : txn.branches) {
    if (b.vote == Vote::kUnknown) return;
    if (b.vote == Vote::kNo) {
      DoAbort(txid, txn,
              absl::StrCat("branch ", b.ref.participant, " voted NO",
                           b.last_error.empty() ? "" : ": ", b.last_error),
              out);
      return;
    }
    any_yes |= b.vote == Vote::kYes;
  }
  if (!any_yes) {
    // Nothing was written anywhere: committed without a forced record. The
    // END that says so is for a later Commit or GetTransaction only.
    ++stats_.committed;
    out->push_back(Decided{txid, true, ""});
    out->push_back(LogEnd{txid, /*committed=*/true});
    Retain(txid, now);
    Finish(txid, TxState::kCommitted, "");
    return;
  }
  LogCommit record{txid, {}};
  for (const Branch& b : txn.branches) {
    if (b.vote == Vote::kYes) record.branches.push_back(b.ref);
  }
  // Invariant: COMMIT is logged once per transaction, never after a
  // decision (the guard above returns while it is being logged).
  TXCOORD_CHECK(txn.decided == absl::InfinitePast() && !record.branches.empty())
      << "txid=" << txid << " COMMIT logged again or without a YES branch";
  txn.logging = true;
  out->push_back(std::move(record));
}

void Engine::DoAbort(const std::string& txid, Txn& txn, const std::string& reason, Actions* out) {
  // Invariant: an abort only of an undecided transaction. Once COMMIT is
  // being logged (or a one-phase branch was asked) a client may hear
  // COMMITTED, so every path to here refuses those first.
  TXCOORD_CHECK((txn.state == TxState::kActive || txn.state == TxState::kPreparing) &&
                !txn.logging && !txn.one_phase)
      << "txid=" << txid << " aborted while " << TxStateName(txn.state)
      << (txn.logging ? " (COMMIT being logged)" : "") << (txn.one_phase ? " (one-phase)" : "")
      << ": " << reason;
  ++stats_.aborted;
  for (const Branch& b : txn.branches) {
    // A branch that voted NO or READ_ONLY has already forgotten itself;
    // an awaited one cannot be reached (its late Enlist is refused).
    if (b.vote == Vote::kNo || b.vote == Vote::kReadOnly || b.awaited) continue;
    out->push_back(SendAbort{txid, b.ref});
  }
  out->push_back(Decided{txid, false, reason});
  Finish(txid, TxState::kAborted, reason);
}

absl::Status Engine::Abort(const std::string& txid, const std::string& reason, absl::Time now,
                           Actions* out) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    bool committed = done != finished_.end() && done->second.state == TxState::kCommitted;
    if (done == finished_.end()) {
      UseUpReserved(txid);
      // Only a txid known not to have committed is "aborted already": past
      // the retention window OK could tell a client settling a lost Commit
      // reply that a committed transaction aborted.
      absl::StatusOr<bool> forgotten = ForgottenOutcome(txid);
      if (!forgotten.ok()) return forgotten.status();
      committed = *forgotten;
    }
    if (committed) {
      return absl::FailedPreconditionError(absl::StrCat("transaction ", txid, " is COMMITTED"));
    }
    return absl::OkStatus();  // aborted already
  }
  Txn& txn = it->second;
  if (txn.one_phase) {
    return absl::FailedPreconditionError(absl::StrCat(
        "transaction ", txid, " is being committed by its only branch and can no longer abort"));
  }
  if (txn.state == TxState::kCommitting || txn.state == TxState::kCommitted || txn.logging) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", txid, " is decided COMMIT and can no longer abort"));
  }
  DoAbort(txid, txn, reason, out);
  return absl::OkStatus();
}

absl::StatusOr<Outcome> Engine::QueryOutcome(const std::string& txid,
                                             const std::string& participant) {
  if (absl::Status owned = CheckOwned(txid); !owned.ok()) return owned;
  auto it = txns_.find(txid);
  if (it == txns_.end()) {
    auto done = finished_.find(txid);
    if (done == finished_.end()) {
      // Not held: ended and forgotten, never begun, or not issued yet.
      // A committed transaction ends only once every branch acknowledged
      // phase 2 or an operator marked it done, so no branch of it is left
      // to ask, except one marked done while still prepared (or
      // heuristically decided) at its agent. Which branches committed is
      // no longer known: ABORTED could undo a committed branch, so the
      // branch stays in doubt for an operator. A txid not begun yet is
      // presumed aborted, so it must never begin: a reserved one is used
      // up, one not issued is skipped.
      UseUpReserved(txid);
      NeverIssue(txid);
      absl::StatusOr<bool> committed = ForgottenOutcome(txid);
      if (committed.ok() && *committed) {
        return absl::FailedPreconditionError(
            absl::StrCat("transaction ", txid,
                         " COMMITTED and ended; which branches committed is no longer "
                         "kept: resolve branch ",
                         participant, " by hand (docs/operations.md)"));
      }
      return Outcome::kAborted;  // presumed abort
    }
    const auto& who = done->second.committed_participants;
    return std::find(who.begin(), who.end(), participant) != who.end() ? Outcome::kCommitted
                                                                       : Outcome::kAborted;
  }
  Txn& txn = it->second;
  switch (txn.state) {
    case TxState::kActive:
    case TxState::kPreparing:
      return Outcome::kPending;
    case TxState::kCommitting:
    case TxState::kCommitted: {
      Branch* b = FindBranch(txn, participant);
      return b != nullptr && b->vote == Vote::kYes ? Outcome::kCommitted : Outcome::kAborted;
    }
    case TxState::kAborted:
      return Outcome::kAborted;
  }
  return Outcome::kPending;
}

void Engine::OnPrepareResult(const std::string& txid, const std::string& participant,
                             const absl::StatusOr<Vote>& vote, absl::Time now, Actions* out) {
  auto it = txns_.find(txid);
  if (it == txns_.end()) return;
  Txn& txn = it->second;
  if (txn.state != TxState::kPreparing || txn.logging) return;  // decided meanwhile
  Branch* b = FindBranch(txn, participant);
  // Invariant: branches never leave a transaction, and only those sent
  // Prepare (never a one-phase branch, nor one that voted in Enlist) can
  // have a prepare call to answer.
  TXCOORD_CHECK(b != nullptr && b->prepare_sent && !txn.one_phase)
      << "txid=" << txid << " prepare result from " << participant << ", which was sent no Prepare";
  if (b->vote != Vote::kUnknown) return;  // duplicate
  CountVote(vote);
  if (vote.ok()) {
    b->vote = *vote;
  } else {
    b->vote = Vote::kNo;
    b->last_error = std::string(vote.status().message());
    DoAbort(txid, txn,
            absl::StrCat("prepare failed at ", participant, ": ", vote.status().ToString()), out);
    return;
  }
  MaybeDecide(txid, txn, now, out);
}

void Engine::OnTimer(const TimerId& timer, absl::Time now, Actions* out) {
  auto it = txns_.find(timer.txid);
  if (it == txns_.end()) return;
  Txn& txn = it->second;
  switch (timer.kind) {
    case TimerKind::kDeadline:
      if ((txn.state == TxState::kActive || txn.state == TxState::kPreparing) && !txn.logging &&
          !txn.one_phase && now >= txn.deadline) {
        DoAbort(timer.txid, txn, "transaction deadline exceeded", out);
      }
      return;
    case TimerKind::kPrepareTimeout:
      if (txn.state == TxState::kPreparing && !txn.logging && !txn.one_phase) {
        std::string missing;
        for (const Branch& b : txn.branches) {
          if (b.vote != Vote::kUnknown) continue;
          absl::StrAppend(&missing, missing.empty() ? "" : ", ", b.ref.participant,
                          b.awaited ? " (named in the Commit, never enlisted)" : "");
        }
        DoAbort(timer.txid, txn, absl::StrCat("prepare timed out waiting for ", missing), out);
      }
      return;
    case TimerKind::kRetryPhase2:
      if (txn.state == TxState::kCommitting) {
        Branch* b = FindBranch(txn, timer.participant);
        TXCOORD_CHECK(b != nullptr)
            << "txid=" << timer.txid << " retry timer for unknown branch " << timer.participant;
        if (!b->acknowledged && timer.generation == b->retry_generation) {
          SendPhase2(timer.txid, txn, *b, now, out);
        }
      }
      return;
    case TimerKind::kRetryOnePhase:
      if (txn.one_phase && txn.state == TxState::kPreparing && !txn.logging &&
          timer.generation == txn.branches[0].retry_generation) {
        SendPhase2(timer.txid, txn, txn.branches[0], now, out);
      }
      return;
  }
}

void Engine::Finish(const std::string& txid, TxState final_state, const std::string& reason) {
  TXCOORD_CHECK(final_state == TxState::kCommitted || final_state == TxState::kAborted)
      << "txid=" << txid << " finished as " << TxStateName(final_state);
  auto it = txns_.find(txid);
  TXCOORD_CHECK(it != txns_.end()) << "txid=" << txid << " finished but not open";
  Finished done{final_state, reason, {}, {}, it->second.begin, it->second.decided};
  if (final_state == TxState::kCommitted) {
    for (const Branch& b : it->second.branches) {
      if (b.vote == Vote::kYes) done.committed_participants.push_back(b.ref.participant);
      if (b.heuristic) done.heuristic_participants.push_back(b.ref.participant);
    }
  }
  txns_.erase(it);
  if (options_.finished_cache == 0) return;
  auto [cached, fresh] = finished_.emplace(txid, std::move(done));
  // Invariant: a txid is decided one way only, even if it ends twice (a
  // recovered COMMIT of a transaction this engine saw end).
  TXCOORD_CHECK(fresh || cached->second.state == final_state)
      << "txid=" << txid << " finished " << TxStateName(final_state) << " after finishing "
      << TxStateName(cached->second.state);
  if (fresh) finished_order_.push_back(txid);
  while (finished_order_.size() > options_.finished_cache) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

}  // namespace txcoord::coordinator
