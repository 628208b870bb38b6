// What the coordinator's log says at start-up, replayed record by record:
// COMMIT records without END (phase 2 to re-drive), ONE_PHASE records
// without END (a branch to ask), the operators' MARK_DONE records on open
// COMMITs, and the retained outcomes. The daemon, the simulator and
// `txctl wal` replay through it, so they cannot read the log differently.
#ifndef TXCOORD_COORDINATOR_RECOVERY_STATE_H_
#define TXCOORD_COORDINATOR_RECOVERY_STATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/actions.h"
#include "coordinator/retained_outcomes.h"

namespace txcoord::coordinator {

// Not thread-safe; one replay at a time.
class RecoveryState final {
 public:
  // `now`: the decision time given to committed txids the log names
  // without one (COMMIT, END committed), so they are kept a full window.
  explicit RecoveryState(const RetentionOptions& retention = {},
                         absl::Time now = absl::UnixEpoch());

  // Feed every replayed record, in log order. DATA_LOSS for a record it
  // cannot decode or an unknown type. A MARK_DONE whose COMMIT is absent or
  // already ENDed, or that names no branch of it, is ignored; so is a
  // repeated one.
  absl::Status Apply(uint8_t type, absl::string_view payload);

  // Ordered by txid, so that every replay re-drives in the same order.
  const std::map<std::string, LogCommit>& unfinished() const { return unfinished_; }
  const std::map<std::string, LogOnePhase>& one_phase() const { return one_phase_; }
  // The marks on unfinished transactions, in log order; empty if none.
  const std::vector<LogMarkDone>& marks(const std::string& txid) const;
  // Every committed txid replayed, the RETAINED chunks and the EXPIRED mark.
  const RetainedOutcomes& outcomes() const { return outcomes_; }
  // False for a log written before outcomes were retained (or a new one):
  // then no earlier epoch's outcome can be told (Engine::Recover).
  bool saw_expired() const { return saw_expired_; }

 private:
  void Retain(const std::string& txid);

  absl::Time now_;
  std::map<std::string, LogCommit> unfinished_;
  std::map<std::string, LogOnePhase> one_phase_;
  std::map<std::string, std::vector<LogMarkDone>> marks_;
  RetainedOutcomes outcomes_;
  bool saw_expired_ = false;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_RECOVERY_STATE_H_
