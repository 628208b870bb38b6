// Fuzzing the coordinator's request handling: a sequence of txcoord.v1
// requests parsed from the input (ParseFromString of attacker bytes) and
// fed to the real protocol engine with the checks the service applies, with
// the results of the engine's actions (votes, acknowledgements, log
// durability, timers) also chosen by the input, and (escape byte 0xff)
// operator requests, log checkpoints and restarts that recover a new engine
// from the records made durable so far. Properties: every call returns a
// status; no transaction is decided both ways, across restarts too;
// COMMITTED is never announced before its COMMIT record is durable;
// QueryOutcome never flips; and the engine's own invariants
// (TXCOORD_CHECK) hold whatever the order of requests, replies, log
// completions and timers.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/engine.h"
#include "coordinator/records.h"
#include "coordinator/recovery_state.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/fuzz_targets.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::fuzz {
namespace {

using coordinator::Action;
using coordinator::Actions;

class Harness final {
 public:
  Harness() : engine_(std::make_unique<coordinator::Engine>(Options(epoch_))) {}

  void Run(Input& in) {
    for (int op = 0; op < 200 && !in.empty(); ++op) Step(in);
  }

 private:
  static coordinator::EngineOptions Options(uint64_t epoch) {
    coordinator::EngineOptions o;
    o.cluster_id = "c";
    o.epoch = epoch;
    o.max_branches = 4;
    o.finished_cache = 8;
    return o;
  }

  // The txid a request names: its own bytes, or (when the input says so)
  // one the engine handed out, so that requests reach real transactions.
  std::string Txid(Input& in, const std::string& given) {
    const uint8_t pick = in.Byte();
    if (pick < 128 || begun_.empty()) return given;
    return begun_[pick % begun_.size()];
  }
  std::string Participant(Input& in, const std::string& given) {
    const uint8_t pick = in.Byte();
    return pick < 128 ? given : std::string(1, static_cast<char>('a' + pick % 3));
  }
  // For operator requests: a txid the engine handed out, and one of the
  // participants the requests enlist most.
  std::string AnyTxid(Input& in) {
    const uint8_t pick = in.Byte();
    return begun_.empty() ? "c.3.1" : begun_[pick % begun_.size()];
  }
  std::string AnyParticipant(Input& in) {
    return std::string(1, static_cast<char>('a' + in.Byte() % 3));
  }

  void Step(Input& in) {
    const uint8_t byte = in.Byte();
    if (byte == 0xff) {
      Special(in);
      return;
    }
    const uint8_t kind = byte % 10;
    if (kind <= 5) {
      Request(kind, in);
    } else if (kind == 6 || kind == 9) {
      Deliver(in, /*duplicate=*/kind == 9);
    } else if (kind == 7) {
      now_ += absl::Milliseconds(100) * in.Byte();
    } else {
      FireTimers();
    }
  }

  void Request(uint8_t kind, Input& in) {
    const std::string bytes = in.Take(in.Byte());
    Actions out;
    switch (kind) {
      case 0: {
        v1::BeginRequest r;
        if (!r.ParseFromString(bytes) || r.timeout_ms() > 3600 * 1000) return;
        auto begun = engine_->Begin(absl::Milliseconds(r.timeout_ms()), now_, &out);
        if (begun.ok()) begun_.push_back(begun->txid);
        break;
      }
      case 1: {
        v1::EnlistRequest r;
        if (!r.ParseFromString(bytes)) return;
        engine_
            ->Enlist(Txid(in, r.txid()), {Participant(in, r.participant()), r.endpoint()},
                     r.prepared(), now_, &out)
            .IgnoreError();
        break;
      }
      case 2: {
        v1::CommitRequest r;
        if (!r.ParseFromString(bytes)) return;
        engine_->Commit(Txid(in, r.txid()), now_, &out).IgnoreError();
        break;
      }
      case 3: {
        v1::AbortRequest r;
        if (!r.ParseFromString(bytes)) return;
        const std::string txid = Txid(in, r.txid());
        absl::Status s = engine_->Abort(txid, "fuzz", now_, &out);
        Require(!s.ok() || !logged_.count(txid),
                absl::StrCat("Abort of ", txid, " succeeded after its COMMIT was logged"));
        break;
      }
      case 4: {
        v1::GetTransactionRequest r;
        if (!r.ParseFromString(bytes)) return;
        engine_->Describe(Txid(in, r.txid())).IgnoreError();
        return;
      }
      case 5: {
        v1::QueryOutcomeRequest r;
        if (!r.ParseFromString(bytes)) return;
        const std::string txid = Txid(in, r.txid());
        const std::string participant = Participant(in, r.participant());
        auto outcome = engine_->QueryOutcome(txid, participant);
        if (outcome.ok() && *outcome != coordinator::Outcome::kPending) {
          const bool committed = *outcome == coordinator::Outcome::kCommitted;
          auto [it, fresh] = answered_.emplace(txid + "/" + participant, committed);
          Require(fresh || it->second == committed,
                  absl::StrCat("QueryOutcome(", txid, ", ", participant, ") flipped"));
          auto d = decided_.find(txid);
          Require(!committed || d == decided_.end() || d->second,
                  absl::StrCat("QueryOutcome says COMMITTED for aborted ", txid));
        }
        return;
      }
    }
    Absorb(std::move(out));
  }

  void Absorb(Actions actions) {
    for (Action& a : actions) {
      if (auto* d = std::get_if<coordinator::Decided>(&a)) {
        if (!d->error.ok()) continue;
        auto [it, fresh] = decided_.emplace(d->txid, d->committed);
        Require(fresh || it->second == d->committed,
                absl::StrCat("transaction ", d->txid, " decided both ways"));
        Require(!d->committed || !logged_.count(d->txid) || durable_.count(d->txid),
                absl::StrCat("COMMITTED announced for ", d->txid, " before COMMIT was durable"));
        continue;
      }
      if (auto* l = std::get_if<coordinator::LogCommit>(&a)) logged_.insert({l->txid, true});
      if (auto* e = std::get_if<coordinator::LogEnd>(&a)) {
        // Never forced, but kept here: a lost END makes a restart ask a
        // one-phase branch again, whose answer this harness would invent
        // anew where a real branch repeats the one it kept.
        log_.push_back({coordinator::kRecordEnd, coordinator::EncodeEnd(*e)});
        ended_.insert(e->txid);
        continue;
      }
      if (auto* t = std::get_if<coordinator::ArmTimer>(&a)) {
        timers_.emplace(t->at, t->timer);
        continue;
      }
      pending_.push_back(std::move(a));
    }
  }

  void Deliver(Input& in, bool duplicate) {
    if (pending_.empty()) return;
    const size_t i = in.Byte() % pending_.size();
    const Action a = pending_[i];
    // A network reply may come twice (an operator's retry sends a second
    // call); a log append completes once.
    const bool log_completion = std::holds_alternative<coordinator::LogCommit>(a) ||
                                std::holds_alternative<coordinator::LogOnePhase>(a) ||
                                std::holds_alternative<coordinator::LogMarkDone>(a);
    if (!duplicate || log_completion) pending_.erase(pending_.begin() + i);
    const uint8_t result = in.Byte();
    const absl::Status failure = absl::UnavailableError("fuzz: call failed");
    Actions out;
    if (auto* p = std::get_if<coordinator::SendPrepare>(&a)) {
      absl::StatusOr<coordinator::Vote> vote = failure;
      if (result % 4 == 1) vote = coordinator::Vote::kYes;
      if (result % 4 == 2) vote = coordinator::Vote::kNo;
      if (result % 4 == 3) vote = coordinator::Vote::kReadOnly;
      engine_->OnPrepareResult(p->txid, p->branch.participant, vote, now_, &out);
    } else if (auto* c = std::get_if<coordinator::SendCommit>(&a)) {
      engine_->OnPhase2Result(c->txid, c->branch.participant,
                              result % 2 ? absl::OkStatus() : failure, now_, &out);
    } else if (auto* o = std::get_if<coordinator::SendCommitOnePhase>(&a)) {
      absl::StatusOr<bool> committed = failure;
      if (result % 3 != 0) committed = result % 3 == 1;
      engine_->OnOnePhaseResult(o->txid, o->branch.participant, committed, now_, &out);
    } else if (auto* l = std::get_if<coordinator::LogCommit>(&a)) {
      // A failed log leaves the outcome unknown; it is never durable then.
      const bool ok = result % 4 != 0;
      if (ok) {
        durable_.insert({l->txid, true});
        log_.push_back({coordinator::kRecordCommit, coordinator::EncodeCommit(*l)});
      }
      engine_->OnCommitLogged(l->txid, ok ? absl::OkStatus() : failure, now_, &out);
    } else if (auto* p = std::get_if<coordinator::LogOnePhase>(&a)) {
      const bool ok = result % 4 != 0;
      if (ok) log_.push_back({coordinator::kRecordOnePhase, coordinator::EncodeOnePhase(*p)});
      engine_->OnOnePhaseLogged(p->txid, ok ? absl::OkStatus() : failure, now_, &out);
    } else if (auto* m = std::get_if<coordinator::LogMarkDone>(&a)) {
      const bool ok = result % 4 != 0;
      if (ok) log_.push_back({coordinator::kRecordMarkDone, coordinator::EncodeMarkDone(*m)});
      engine_->OnMarkDoneLogged(*m, ok ? absl::OkStatus() : failure, now_, &out);
    }
    Absorb(std::move(out));
  }

  // Operator requests, checkpoints and restarts.
  void Special(Input& in) {
    const uint8_t kind = in.Byte() % 6;
    Actions out;
    switch (kind) {
      case 0: {
        const std::string txid = AnyTxid(in);
        const std::string participant = AnyParticipant(in);
        engine_->MarkBranchDone(txid, participant, in.Take(in.Byte() % 8), now_, &out)
            .IgnoreError();
        break;
      }
      case 1:
        engine_->RetryPhase2(AnyTxid(in), now_, &out).IgnoreError();
        break;
      case 2: {
        const std::string txid = AnyTxid(in);
        absl::Status s = engine_->ForceAbort(txid, "fuzz operator", now_, &out);
        Require(!s.ok() || !logged_.count(txid),
                absl::StrCat("ForceAbort of ", txid, " succeeded after its COMMIT was logged"));
        break;
      }
      case 3:
        // A WAL rotation: the checkpoint replaces every older record, and
        // makes durable the COMMITs still being logged.
        log_.clear();
        for (const coordinator::EncodedRecord& r : engine_->Checkpoint()) log_.push_back(r);
        for (const coordinator::LogCommit& c : engine_->LiveCommits()) {
          durable_.insert({c.txid, true});
        }
        return;
      case 4:
        Restart();
        return;
      case 5: {
        coordinator::ListFilter filter;
        filter.include_finished = true;
        engine_->List(filter, now_).IgnoreError();
        engine_->Stats(now_);
        engine_->LiveMarks();
        return;
      }
    }
    Absorb(std::move(out));
  }

  // A crash and a start: calls, timers and unlogged state are lost; a new
  // engine of the next epoch recovers from the durable records, and logs
  // its EXPIRED mark before serving, as the daemon does.
  void Restart() {
    pending_.clear();
    timers_.clear();
    ++epoch_;
    const coordinator::EngineOptions options = Options(epoch_);
    coordinator::RecoveryState recovery(options.retention, now_);
    for (const coordinator::EncodedRecord& r : log_) {
      absl::Status s = recovery.Apply(r.type, r.payload);
      Require(s.ok(), absl::StrCat("the engine's own record does not replay: ", s.ToString()));
    }
    engine_ = std::make_unique<coordinator::Engine>(options);
    Actions out;
    engine_->Recover(recovery, now_, &out);
    log_.push_back(
        {coordinator::kRecordExpired, coordinator::EncodeExpired(engine_->retained().expired())});
    // An ended transaction's branches are settled: no participant asks about
    // them, and a restarted coordinator no longer names them (presumed abort).
    for (const std::string& txid : ended_) {
      answered_.erase(answered_.lower_bound(txid + "/"), answered_.lower_bound(txid + "0"));
    }
    Absorb(std::move(out));
  }

  void FireTimers() {
    while (!timers_.empty() && timers_.begin()->first <= now_) {
      coordinator::TimerId timer = timers_.begin()->second;
      timers_.erase(timers_.begin());
      Actions out;
      engine_->OnTimer(timer, now_, &out);
      Absorb(std::move(out));
    }
  }

  uint64_t epoch_ = 3;
  std::unique_ptr<coordinator::Engine> engine_;
  std::vector<coordinator::EncodedRecord> log_;  // durable records, in order
  std::set<std::string> ended_;
  absl::Time now_ = absl::FromUnixSeconds(1000000);
  std::vector<std::string> begun_;
  std::vector<Action> pending_;
  std::multimap<absl::Time, coordinator::TimerId> timers_;
  std::map<std::string, bool> decided_;
  std::map<std::string, bool> answered_;
  std::map<std::string, bool> logged_;
  std::map<std::string, bool> durable_;
};

}  // namespace

int FuzzCoordinatorRequests(const uint8_t* data, size_t size) {
  Input in(data, size);
  Harness harness;
  harness.Run(in);
  return 0;
}

}  // namespace txcoord::fuzz
