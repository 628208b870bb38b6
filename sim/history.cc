#include "sim/history.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace txcoord::sim {
namespace {

const char* Word(bool committed) { return committed ? "COMMITTED" : "ABORTED"; }

}  // namespace

TxnRecord& History::Begin(const std::string& txid, int client) {
  TxnRecord& record = txns_[txid];
  if (!record.txid.empty()) {
    Violation(absl::StrCat("txid ", txid, " was handed out twice (clients ", record.client, " and ",
                           client, ")"));
  }
  record.txid = txid;
  record.client = client;
  return record;
}

TxnRecord* History::Find(const std::string& txid) {
  auto it = txns_.find(txid);
  return it == txns_.end() ? nullptr : &it->second;
}

void History::ClientTold(const std::string& txid, bool committed, const std::string& reason) {
  TxnRecord* record = Find(txid);
  if (record == nullptr) return;
  const Told told = committed ? Told::kCommitted : Told::kAborted;
  if (record->told != Told::kNothing && record->told != told) {
    Violation(absl::StrCat("client was told both COMMITTED and ABORTED for ", txid));
  }
  record->told = told;
  record->told_reason = reason;
}

void History::CoordinatorDecided(const std::string& txid, bool committed) {
  auto [it, inserted] = decided_.emplace(txid, committed);
  if (!inserted && it->second != committed) {
    Violation(absl::StrCat("coordinator decided ", txid, " both ways: first ", Word(it->second),
                           ", now ", Word(committed)));
  }
}

void History::OutcomeAnswered(const std::string& txid, const std::string& participant,
                              bool committed) {
  auto [it, inserted] = answered_.emplace(std::make_pair(txid, participant), committed);
  if (!inserted && it->second != committed) {
    Violation(absl::StrCat("coordinator answered QueryOutcome(", txid, ", ", participant,
                           ") both ways: first ", Word(it->second), ", now ", Word(committed)));
  }
  auto decided = decided_.find(txid);
  if (decided != decided_.end() && decided->second != committed) {
    // A branch of a committed transaction may hear ABORTED only if it was
    // not part of the commit (it voted READ_ONLY or was never enlisted):
    // the checker's final state check judges that; a branch hearing
    // COMMITTED for an aborted transaction is wrong outright.
    if (committed) {
      Violation(absl::StrCat("coordinator answered COMMITTED to ", participant, " for ", txid,
                             ", which it decided ABORTED"));
    }
  }
}

void History::Violation(const std::string& what) {
  const std::string line =
      absl::StrFormat("t=%.6fs: %s", absl::ToDoubleSeconds(loop_->elapsed()), what);
  loop_->Trace(absl::StrCat("VIOLATION ", what));
  if (violations_.empty()) first_trace_ = loop_->TraceTail();
  violations_.push_back(line);
}

}  // namespace txcoord::sim
