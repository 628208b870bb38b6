#include "sim/checker.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace txcoord::sim {
namespace {

int64_t IntOf(const SqlValue& v) {
  const int64_t* i = std::get_if<int64_t>(&v);
  return i == nullptr ? -1 : *i;
}

std::string TextOf(const SqlValue& v) {
  const std::string* s = std::get_if<std::string>(&v);
  return s == nullptr ? "" : *s;
}

std::string Names(const std::set<std::string>& names) {
  return names.empty() ? "nowhere" : absl::StrJoin(names, ",");
}

std::string Show(const std::vector<Write>& writes) {
  return absl::StrJoin(writes, " ", [](std::string* out, const Write& w) {
    absl::StrAppend(out, "acct", w.account, (w.delta >= 0 ? "+" : ""), w.delta);
  });
}

}  // namespace

void CheckSafety(const WorkloadOptions& workload, const CoordinatorNode& coordinator,
                 const std::vector<ParticipantNode*>& participants, History* history) {
  // participant -> txid -> ledger rows (first half of a branch), marks (second)
  std::map<std::string, std::map<std::string, std::vector<Write>>> applied;
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> marked;
  int64_t total = 0;
  for (ParticipantNode* p : participants) {
    absl::StatusOr<participant::ExecuteResult> read =
        p->Local({{"SELECT txid, account, delta FROM ledger ORDER BY txid, account", {}},
                  {"SELECT id, balance FROM accounts ORDER BY id", {}},
                  {"SELECT txid, account FROM marks ORDER BY txid, account", {}}});
    if (!read.ok() || read->results.size() != 3) {
      history->Violation(absl::StrCat(p->name(), ": cannot read its database: ",
                                      read.ok() ? "wrong result count" : read.status().ToString()));
      continue;
    }
    std::map<int64_t, int64_t> expected;
    for (int id = 1; id <= workload.accounts; ++id) expected[id] = workload.initial_balance;
    for (const auto& row : read->results[0].rows) {
      const Write w{IntOf(row[1]), IntOf(row[2])};
      applied[p->name()][TextOf(row[0])].push_back(w);
      expected[w.account] += w.delta;
    }
    for (const auto& row : read->results[2].rows) {
      marked[p->name()][TextOf(row[0])].push_back(IntOf(row[1]));
    }
    const auto& accounts = read->results[1].rows;
    if (accounts.size() != static_cast<size_t>(workload.accounts)) {
      history->Violation(absl::StrCat(p->name(), ": ", accounts.size(), " accounts, expected ",
                                      workload.accounts));
    }
    for (const auto& row : accounts) {
      const int64_t id = IntOf(row[0]);
      const int64_t balance = IntOf(row[1]);
      total += balance;
      if (expected[id] != balance) {
        history->Violation(absl::StrCat(
            p->name(), ": account ", id, " holds ", balance, " but its ledger says ", expected[id],
            ": a branch was applied in part (balance and ledger row disagree)"));
      }
    }
  }
  const int64_t money =
      workload.initial_balance * workload.accounts * static_cast<int64_t>(participants.size());
  if (total != money) {
    history->Violation(absl::StrCat("money is not conserved: ", total, " instead of ", money));
  }

  for (const auto& [txid, record] : history->txns()) {
    std::set<std::string> where;
    for (ParticipantNode* p : participants) {
      const std::string& participant = p->name();
      auto rows = applied[participant].find(txid);
      auto marks = marked[participant].find(txid);
      if (rows == applied[participant].end() && marks == marked[participant].end()) continue;
      where.insert(participant);
      auto planned = record.writes.find(participant);
      std::vector<Write> want =
          planned == record.writes.end() ? std::vector<Write>{} : planned->second;
      std::vector<Write> got;
      if (rows != applied[participant].end()) got = rows->second;
      std::vector<int64_t> got_marks;
      if (marks != marked[participant].end()) got_marks = marks->second;
      std::vector<int64_t> want_marks;
      for (const Write& w : want) want_marks.push_back(w.account);
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
      std::sort(got_marks.begin(), got_marks.end());
      std::sort(want_marks.begin(), want_marks.end());
      if (got != want || got_marks != want_marks) {
        history->Violation(absl::StrCat(
            txid, " at ", participant, ": a branch applied in part or wrongly: ledger [", Show(got),
            "] and marks [", absl::StrJoin(got_marks, " "), "], but the client wrote [", Show(want),
            "] and marks [", absl::StrJoin(want_marks, " "), "]"));
      }
    }
    std::set<std::string> planned;
    for (const auto& [participant, writes] : record.writes) planned.insert(participant);
    std::set<std::string> missing;
    std::set_difference(planned.begin(), planned.end(), where.begin(), where.end(),
                        std::inserter(missing, missing.begin()));
    const bool none = where.empty();
    const bool all = missing.empty();
    if (!none && !all) {
      history->Violation(absl::StrCat(txid, " is not atomic: applied at ", Names(where),
                                      ", not at ", Names(missing)));
    }
    if (record.told == Told::kCommitted && !all) {
      history->Violation(absl::StrCat(txid, ": the client was told COMMITTED but it is missing at ",
                                      Names(missing)));
    }
    if (record.told == Told::kAborted && !none) {
      history->Violation(absl::StrCat(txid, ": the client was told ABORTED (", record.told_reason,
                                      ") but it was applied at ", Names(where)));
    }
    if (!record.writes.empty()) {
      // A client that lost its Commit reply asks the coordinator: it must
      // hear what the databases hold.
      absl::StatusOr<bool> told = coordinator.OutcomeOf(txid);
      if (!told.ok()) {
        history->Violation(absl::StrCat(
            txid, ": the coordinator cannot tell its outcome: ", told.status().ToString()));
      } else if (*told ? !all : !none) {
        history->Violation(absl::StrCat(txid, ": the coordinator tells ",
                                        *told ? "COMMITTED" : "ABORTED", " but it is applied at ",
                                        none ? "none" : Names(where)));
      }
    }
    if (!record.commit_sent && !none) {
      history->Violation(absl::StrCat(txid, ": applied at ", Names(where),
                                      " though the client never called Commit"));
    }
  }
  for (const auto& [participant, rows] : applied) {
    for (const auto& [txid, writes] : rows) {
      if (history->Find(txid) == nullptr) {
        history->Violation(
            absl::StrCat(participant, ": ledger row of ", txid, ", a transaction no client began"));
      }
    }
  }
  for (const auto& [participant, rows] : marked) {
    for (const auto& [txid, accounts] : rows) {
      if (history->Find(txid) == nullptr) {
        history->Violation(
            absl::StrCat(participant, ": mark of ", txid, ", a transaction no client began"));
      }
    }
  }
}

std::vector<std::string> Leftovers(CoordinatorNode* coordinator,
                                   const std::vector<ParticipantNode*>& participants) {
  std::vector<std::string> left;
  if (!coordinator->running()) {
    left.push_back("coordinator is down");
  } else if (coordinator->open_transactions() > 0) {
    left.push_back(absl::StrCat("coordinator: ", coordinator->open_transactions(),
                                " transaction(s) still open"));
    for (std::string& line : coordinator->DescribeOpen()) left.push_back(std::move(line));
  }
  for (ParticipantNode* p : participants) {
    if (!p->running()) {
      left.push_back(absl::StrCat(p->name(), " is down"));
      continue;
    }
    const std::vector<std::string> prepared = p->PreparedTxids();
    for (const std::string& txid : prepared) {
      left.push_back(absl::StrCat(p->name(), ": branch ", txid, " still prepared (in doubt)"));
    }
    if (p->branch_count() > prepared.size()) {
      left.push_back(absl::StrCat(p->name(), ": ", p->branch_count() - prepared.size(),
                                  " unprepared branch(es) left"));
    }
    if (p->lock_count() > 0 && prepared.empty()) {
      left.push_back(absl::StrCat(p->name(), ": ", p->lock_count(), " row lock(s) still held"));
    }
  }
  return left;
}

}  // namespace txcoord::sim
