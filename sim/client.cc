#include "sim/client.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sim/coordinator_node.h"
#include "sim/participant_node.h"

namespace txcoord::sim {
namespace {

constexpr char kUpdate[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";
constexpr char kLedger[] = "INSERT INTO ledger(txid, account, delta) VALUES (?1, ?2, ?3)";
constexpr char kMark[] = "INSERT INTO marks(txid, account) VALUES (?1, ?2)";

}  // namespace

std::vector<SqlStatement> SchemaStatements(const WorkloadOptions& options) {
  std::vector<SqlStatement> out;
  out.push_back({"CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)", {}});
  // One row per account change of a transaction: which branches were
  // applied, and whether each was applied whole.
  out.push_back(
      {"CREATE TABLE ledger(txid TEXT NOT NULL, account INTEGER NOT NULL, "
       "delta INTEGER NOT NULL, PRIMARY KEY(txid, account))",
       {}});
  // Written by a branch's second half (its own Execute with split_execute):
  // a ledger row without its mark, or a mark without its ledger row, names
  // the transaction whose branch was applied in part.
  out.push_back(
      {"CREATE TABLE marks(txid TEXT NOT NULL, account INTEGER NOT NULL, "
       "PRIMARY KEY(txid, account))",
       {}});
  for (int id = 1; id <= options.accounts; ++id) {
    out.push_back({"INSERT INTO accounts(id, balance) VALUES (?1, ?2)",
                   {int64_t{id}, options.initial_balance}});
  }
  return out;
}

Client::Client(EventLoop* loop, Network* net, History* history, NodeId id, int index,
               CoordinatorRoute coordinator, std::vector<ParticipantNode*> participants,
               const WorkloadOptions& options, std::function<bool()> take_ticket)
    : loop_(loop),
      net_(net),
      history_(history),
      id_(id),
      index_(index),
      coordinator_(std::move(coordinator)),
      participants_(std::move(participants)),
      options_(options),
      take_ticket_(std::move(take_ticket)) {}

void Client::Start() { Next(); }

void Client::Next() {
  if (!take_ticket_()) {
    done_ = true;
    return;
  }
  txid_.clear();
  steps_.clear();
  named_.clear();
  if (options_.reserved_txids > 0 && loop_->Chance(options_.reserved_txids)) {
    TakeReserved();
  } else {
    Begin(0);
  }
}

void Client::TakeReserved() {
  if (reserved_next_ < reserved_end_ && loop_->Now() < reserved_until_) {
    ++stats_.reserved;
    Started(absl::StrCat(reserved_prefix_, reserved_next_++));
    return;
  }
  CoordinatorNode* coord = coordinator_();
  const absl::Duration timeout = options_.tx_timeout;
  const uint32_t count = options_.reserve_block;
  const absl::Time sent = loop_->Now();
  net_->Call<absl::StatusOr<coordinator::ReserveResult>>(
      id_, coord->id(), "ReserveTxids", options_.rpc_timeout, false,
      [coord, count, timeout](auto reply) { reply(coord->Reserve(count, timeout)); },
      [this, sent](absl::StatusOr<coordinator::ReserveResult> reserved) {
        if (!reserved.ok()) {
          Begin(0);
          return;
        }
        reserved_prefix_ = absl::StrCat(reserved->cluster, ".", reserved->epoch, ".");
        reserved_next_ = reserved->first_sequence;
        reserved_end_ = reserved->first_sequence + reserved->count;
        reserved_until_ = sent + reserved->valid_for / 2;
        TakeReserved();
      });
}

void Client::Finish() {
  loop_->After(loop_->UniformDuration(absl::ZeroDuration(), options_.max_think),
               [this] { Next(); });
}

void Client::Begin(int attempt) {
  CoordinatorNode* coord = coordinator_();
  const absl::Duration timeout = options_.tx_timeout;
  net_->Call<absl::StatusOr<coordinator::BeginResult>>(
      id_, coord->id(), "Begin", options_.rpc_timeout, false,
      [coord, timeout](auto reply) { reply(coord->Begin(timeout)); },
      [this, attempt](absl::StatusOr<coordinator::BeginResult> begun) {
        if (!begun.ok()) {
          if (attempt < options_.begin_retries) {
            loop_->After(loop_->UniformDuration(absl::Milliseconds(10), absl::Milliseconds(100)),
                         [this, attempt] { Begin(attempt + 1); });
          } else {
            ++stats_.abandoned;
            Finish();
          }
          return;
        }
        Started(begun->txid);
      });
}

void Client::Started(std::string txid) {
  txid_ = std::move(txid);
  ++stats_.begun;
  name_branches_ = loop_->Chance(options_.named_branches);
  if (name_branches_) ++stats_.named;
  carry_votes_ =
      name_branches_ && options_.signed_votes > 0 && loop_->Chance(options_.signed_votes);
  Plan();
  Execute(0, 0);
}

void Client::Plan() {
  const int n = static_cast<int>(participants_.size());
  int branches = 2;
  if (loop_->Chance(options_.single_branch)) {
    branches = 1;
  } else if (n >= 3 && loop_->Chance(options_.three_branches)) {
    branches = 3;
  }
  branches = std::min(branches, n);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), loop_->rng());
  auto account = [&] { return loop_->Uniform(1, options_.accounts); };
  const int64_t amount = loop_->Uniform(1, 100);
  std::vector<std::vector<Write>> writes(branches);
  if (branches == 1) {
    const int64_t from = account();
    int64_t to = account();
    if (to == from) to = from % options_.accounts + 1;
    writes[0] = {{from, -amount}, {to, amount}};
    ++stats_.one_phase;
  } else if (branches == 2) {
    writes[0] = {{account(), -amount}};
    writes[1] = {{account(), amount}};
  } else {
    const int64_t part = loop_->Uniform(0, amount);
    writes[0] = {{account(), -amount}};
    writes[1] = {{account(), part}};
    writes[2] = {{account(), amount - part}};
  }
  TxnRecord& record = history_->Begin(txid_, index_);
  std::vector<Step> second;  // split_execute: the ledger rows, after every update
  for (int b = 0; b < branches; ++b) {
    ParticipantNode* p = participants_[order[b]];
    record.writes[p->name()] = writes[b];
    std::vector<SqlStatement> updates;
    std::vector<SqlStatement> ledger;  // the second half: marks
    for (const Write& w : writes[b]) {
      updates.push_back({kUpdate, {w.delta, w.account}});
      updates.push_back({kLedger, {txid_, w.account, w.delta}});
      ledger.push_back({kMark, {txid_, w.account}});
    }
    const bool prepare = loop_->Chance(options_.early_prepare);
    if (options_.split_execute) {
      steps_.push_back({p, std::move(updates), false});
      second.push_back({p, std::move(ledger), prepare});
    } else {
      for (SqlStatement& s : ledger) updates.push_back(std::move(s));
      steps_.push_back({p, std::move(updates), prepare});
    }
  }
  for (Step& s : second) steps_.push_back(std::move(s));
  loop_->Trace(absl::StrCat("client", index_, " BEGIN ", txid_, " with ", branches, " branch(es)"));
}

void Client::Execute(size_t step, int attempt) {
  if (step == steps_.size()) {
    if (loop_->Chance(options_.client_abort)) {
      Abort("the client changed its mind");
    } else {
      Commit(0);
    }
    return;
  }
  const Step& s = steps_[step];
  ParticipantNode* p = s.participant;
  net_->Call<absl::StatusOr<participant::ExecuteResult>>(
      id_, p->id(), absl::StrCat("Execute ", txid_), options_.rpc_timeout, false,
      [p, txid = txid_, statements = s.statements, prepare = s.prepare, named = name_branches_,
       carry = carry_votes_](auto reply) {
        reply(p->Execute(txid, statements, prepare, named, carry));
      },
      [this, step, attempt, prepare = s.prepare,
       name = p->name()](absl::StatusOr<participant::ExecuteResult> r) {
        if (r.ok()) {
          if (prepare) ++stats_.early_prepared;
          Remember(name, *r);
          loop_->After(loop_->UniformDuration(absl::ZeroDuration(), options_.max_step_gap),
                       [this, step] { Execute(step + 1, 0); });
          return;
        }
        if (absl::IsAborted(r.status()) &&
            absl::StrContains(r.status().message(), "lock timeout") &&
            attempt < options_.lock_retries) {
          // What waiting for the lock would have done, without blocking.
          loop_->After(loop_->UniformDuration(absl::Milliseconds(1), absl::Milliseconds(10)),
                       [this, step, attempt] { Execute(step, attempt + 1); });
          return;
        }
        Abort(absl::StrCat("Execute failed: ", r.status().ToString()));
      });
}

void Client::Remember(const std::string& participant, const participant::ExecuteResult& result) {
  if (!name_branches_ || result.branch_token == 0) return;
  if (!result.vote_proof.empty()) ++stats_.signed_votes;
  if (result.vote_deferred) ++stats_.deferred_votes;
  // As txcoord::NameBranch: the first token; a signed vote reported later
  // for the same token joins it.
  for (txcoord::coordinator::NamedBranch& b : named_) {
    if (b.ref.participant != participant) continue;
    if (b.ref.token == result.branch_token && !result.vote_proof.empty()) {
      b.ref.endpoint = result.endpoint;
      b.vote_proof = result.vote_proof;
    }
    return;
  }
  named_.push_back(txcoord::coordinator::NamedBranch{
      txcoord::coordinator::BranchRef{participant, result.endpoint, result.branch_token},
      result.vote_proof});
}

void Client::Abort(const std::string& why) {
  CoordinatorNode* coord = coordinator_();
  loop_->Trace(absl::StrCat("client", index_, " ABORT ", txid_, ": ", why));
  net_->Call<absl::Status>(
      id_, coord->id(), absl::StrCat("Abort ", txid_), options_.rpc_timeout, true,
      [coord, txid = txid_, named = named_](auto reply) { reply(coord->Abort(txid, named)); },
      [this, why](absl::Status s) {
        if (s.ok()) {
          ++stats_.aborted;
          history_->ClientTold(txid_, false, why);
        } else {
          ++stats_.abandoned;
        }
        Finish();
      });
}

void Client::Commit(int attempt) {
  CoordinatorNode* coord = coordinator_();
  history_->Find(txid_)->commit_sent = true;
  const bool short_deadline = loop_->Chance(options_.short_commit_deadline);
  const absl::Duration timeout =
      short_deadline ? loop_->UniformDuration(absl::Milliseconds(1), options_.max_short_deadline)
                     : options_.commit_timeout;
  // gRPC hands the caller's deadline to the server: the coordinator stops
  // waiting when the client does.
  const absl::Time deadline = loop_->now() + timeout;
  net_->Call<absl::StatusOr<coordinator::CommitResult>>(
      id_, coord->id(), absl::StrCat("Commit ", txid_), timeout, true,
      [coord, txid = txid_, named = named_, deadline](auto reply) {
        coord->Commit(txid, named, deadline, std::move(reply));
      },
      [this, attempt, short_deadline](absl::StatusOr<coordinator::CommitResult> r) {
        if (r.ok()) {
          loop_->Trace(absl::StrCat("client", index_, " told ", txid_,
                                    r->committed ? " COMMITTED" : " ABORTED"));
          ++(r->committed ? stats_.committed : stats_.aborted);
          history_->ClientTold(txid_, r->committed, r->reason);
          Finish();
          return;
        }
        if (absl::IsDeadlineExceeded(r.status())) {
          ++stats_.deadline_exceeded;
          if (options_.bug_deadline_means_aborted) {
            loop_->Trace(absl::StrCat("client", index_, " BUG: takes DEADLINE_EXCEEDED of ", txid_,
                                      " for ABORTED"));
            ++stats_.aborted;
            history_->ClientTold(txid_, false, "deadline exceeded (taken for aborted)");
            Finish();
            return;
          }
          if (short_deadline || loop_->Chance(options_.settle_by_asking)) {
            loop_->Trace(absl::StrCat("client", index_, " Commit of ", txid_,
                                      " past its deadline: asking for the outcome"));
            Settle(0);
            return;
          }
        }
        const bool retry = absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status());
        if (retry && attempt < options_.commit_retries) {
          loop_->After(loop_->UniformDuration(absl::Milliseconds(50), absl::Milliseconds(200)),
                       [this, attempt] { Commit(attempt + 1); });
          return;
        }
        Unknown(r.status());
      });
}

void Client::Settle(int attempt) {
  // Enough questions to outlast the transaction's deadline and a
  // coordinator restart: an undecided commit is decided by then.
  constexpr int kMaxQuestions = 40;
  const absl::Duration pause =
      loop_->UniformDuration(absl::Milliseconds(50), absl::Milliseconds(300));
  loop_->After(pause, [this, attempt] {
    CoordinatorNode* coord = coordinator_();
    net_->Call<absl::StatusOr<bool>>(
        id_, coord->id(), absl::StrCat("GetTransaction ", txid_), options_.rpc_timeout, true,
        [coord, txid = txid_](auto reply) { reply(coord->OutcomeOf(txid)); },
        [this, attempt](absl::StatusOr<bool> outcome) {
          if (outcome.ok()) {
            loop_->Trace(absl::StrCat("client", index_, " asked: ", txid_,
                                      *outcome ? " COMMITTED" : " ABORTED"));
            ++stats_.settled;
            ++(*outcome ? stats_.committed : stats_.aborted);
            history_->ClientTold(txid_, *outcome, "learned by GetTransaction");
            Finish();
            return;
          }
          // Undecided (FAILED_PRECONDITION) or no answer: ask again.
          const absl::StatusCode code = outcome.status().code();
          const bool again = code == absl::StatusCode::kFailedPrecondition ||
                             code == absl::StatusCode::kUnavailable ||
                             code == absl::StatusCode::kDeadlineExceeded;
          if (again && attempt + 1 < kMaxQuestions) {
            Settle(attempt + 1);
            return;
          }
          Unknown(outcome.status());
        });
  });
}

void Client::Unknown(const absl::Status& why) {
  loop_->Trace(absl::StrCat("client", index_, " outcome of ", txid_, " unknown: ", why.ToString()));
  ++stats_.unknown;
  if (options_.abort_unknown) {
    Abort("settling an unknown outcome");
    return;
  }
  Finish();
}

}  // namespace txcoord::sim
