#include "harness/audit.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace txcoord::testing {
namespace {

constexpr size_t kExamples = 5;

void Note(std::vector<std::string>* list, const std::string& txid) {
  if (list->size() < kExamples) list->push_back(txid);
}

}  // namespace

std::string AuditReport::ToString() const {
  return absl::StrCat(committed, " committed in the files, ", prepared, " prepared, money ", money,
                      "; partial [", absl::StrJoin(partial, ", "), "], lost [",
                      absl::StrJoin(lost, ", "), "], resurrected [",
                      absl::StrJoin(resurrected, ", "), "], ", unknown, " unknown to the client");
}

absl::StatusOr<AuditReport> Audit(const std::vector<std::string>& db_paths,
                                  const std::map<std::string, TransferOutcome>& told) {
  AuditReport report;
  absl::StatusOr<int64_t> prepared = Bank::CountPrepared(db_paths);
  if (!prepared.ok()) return prepared.status();
  report.prepared = static_cast<int>(*prepared);
  absl::StatusOr<int64_t> money = Bank::SumBalances(db_paths);
  if (!money.ok()) return money.status();
  report.money = *money;

  std::vector<std::set<std::string>> ledgers;
  std::set<std::string> anywhere;
  for (const std::string& db : db_paths) {
    absl::StatusOr<std::set<std::string>> txids = Bank::LedgerTxids(db);
    if (!txids.ok()) return txids.status();
    anywhere.insert(txids->begin(), txids->end());
    ledgers.push_back(*std::move(txids));
  }
  report.committed = static_cast<int>(anywhere.size());
  for (const std::string& txid : anywhere) {
    for (const auto& ledger : ledgers) {
      if (!ledger.count(txid)) {
        Note(&report.partial, txid);
        break;
      }
    }
  }
  for (const auto& [txid, outcome] : told) {
    const bool present = anywhere.count(txid) > 0;
    if (outcome == TransferOutcome::kCommitted && !present) Note(&report.lost, txid);
    if (outcome == TransferOutcome::kUnknown) ++report.unknown;
    if (outcome != TransferOutcome::kCommitted && outcome != TransferOutcome::kUnknown && present) {
      Note(&report.resurrected, txid);
    }
  }
  return report;
}

}  // namespace txcoord::testing
