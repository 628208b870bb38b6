// The audit that crash and chaos tests end with: read the agents' database
// files directly and compare them with what the clients were told. A
// transfer is committed where its ledger row is (BankOptions::ledger).
#ifndef TXCOORD_HARNESS_AUDIT_H_
#define TXCOORD_HARNESS_AUDIT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "harness/bank.h"

namespace txcoord::testing {

struct AuditReport {
  int committed = 0;  // transfers present in the files
  int prepared = 0;   // branches still prepared (must be 0)
  int64_t money = 0;  // sum of all balances
  // Each names its txids (at most a few) for the failure message.
  std::vector<std::string> partial;      // present at some agents only
  std::vector<std::string> lost;         // told COMMITTED, absent
  std::vector<std::string> resurrected;  // told aborted, present
  int unknown = 0;                       // told nothing definite

  // True if every transfer is all-or-nothing and matches what was told.
  bool Atomic() const { return partial.empty() && lost.empty() && resurrected.empty(); }
  std::string ToString() const;
};

// Reads `db_paths` (one per agent) and checks them against `told` (txid →
// what the client heard).
absl::StatusOr<AuditReport> Audit(const std::vector<std::string>& db_paths,
                                  const std::map<std::string, TransferOutcome>& told);

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_AUDIT_H_
