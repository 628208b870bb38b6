// The durable log the coordinator's runtime records its decisions in
// (COMMIT, ONE_PHASE, MARK_DONE, END, EXPIRED; coordinator/records.h), as
// an interface of the WAL layer, so that the runtime depends on the WAL and
// never the other way: the daemon's is the WAL (wal::Log), the simulator's
// a model of it on the simulator's thread (sim::SimWal). Replay is not part of it:
// whoever opens the log feeds its records to a RecoveryState first.
//
//   log->Append(kRecordCommit, EncodeCommit(commit), /*sync=*/true,
//               [](absl::Status s) { /* durable, or the log failed */ });
#ifndef TXCOORD_COORDINATOR_WAL_DECISION_LOG_H_
#define TXCOORD_COORDINATOR_WAL_DECISION_LOG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace txcoord::wal {

class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Queues a record and returns without waiting for the disk. `done` (may
  // be empty) runs once, never inside Append, when the record is written
  // and, if `sync`, durable; or with the error that failed the log, which
  // every later append gets too (fail-stop). A record appended without
  // sync becomes durable with the next synced one. Implementations say on
  // which thread `done` runs.
  virtual void Append(uint8_t type, std::string payload, bool sync,
                      std::function<void(absl::Status)> done) = 0;

  // OK, or the error that failed the log for good.
  virtual absl::Status health() const = 0;
};

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_DECISION_LOG_H_
