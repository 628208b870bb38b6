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

// Marks the current thread as one that may wait for the log's disk: an
// Append made inside the scope may write and sync its batch on this thread,
// and run that batch's `done` callbacks here before it returns (no handoff
// to a writer thread and back). Threads that serve many callers at once
// (gRPC's, the scheduler's) stay outside it: their Appends only queue.
// Scopes nest.
class WriteHereScope {
 public:
  WriteHereScope() { ++depth_; }
  ~WriteHereScope() { --depth_; }
  WriteHereScope(const WriteHereScope&) = delete;
  WriteHereScope& operator=(const WriteHereScope&) = delete;
  static bool active() { return depth_ > 0; }

 private:
  static inline thread_local int depth_ = 0;
};

class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Queues a record. `done` (may be empty) runs once, when the record is
  // written and, if `sync`, durable; or with the error that failed the
  // log, which every later append gets too (fail-stop). A record appended
  // without sync becomes durable with the next synced one. `done` never
  // runs inside Append, except on a thread in a WriteHereScope: there an
  // implementation may write the batch itself and run its callbacks before
  // Append returns. Implementations say on which thread `done` runs.
  virtual void Append(uint8_t type, std::string payload, bool sync,
                      std::function<void(absl::Status)> done) = 0;

  // OK, or the error that failed the log for good.
  virtual absl::Status health() const = 0;
};

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_DECISION_LOG_H_
