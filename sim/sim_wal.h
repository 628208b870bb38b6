// The coordinator's write-ahead log under simulation. wal::Log owns a writer
// thread, which would make a run depend on the OS scheduler; this model keeps
// its contract (docs/wal-format.md) on the simulator's single thread instead:
//
// - group commit: records appended while a batch is being written or synced
//   form the next batch; one simulated fdatasync per batch that asked for
//   sync; `done` callbacks run after it, in append order;
// - "appended" is not "durable": a batch's bytes are written at once but
//   survive a crash only once synced; a crash keeps the synced bytes plus a
//   random byte prefix of the rest, so it can tear a record in half;
// - the bytes are real WAL framing (wal::AppendRecord, one segment), and
//   recovery reads them with the real reader (wal::ScanSegment and
//   SegmentVerdict): a torn tail is cut, anything else refuses to start;
// - a failed fdatasync fails the log for good (fail-stop);
// - rotation writes the checkpoint (the live commits) as a new base segment.
//
// It is the simulated coordinator's wal::DecisionLog: the real
// Runtime appends to it.
#ifndef TXCOORD_SIM_SIM_WAL_H_
#define TXCOORD_SIM_SIM_WAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/wal/decision_log.h"
#include "coordinator/wal/log.h"
#include "sim/event_loop.h"

namespace txcoord::sim {

struct SimWalOptions {
  absl::Duration min_sync = absl::Microseconds(200);
  absl::Duration max_sync = absl::Milliseconds(3);
  absl::Duration write_latency = absl::Microseconds(20);
  double sync_failure = 0;    // chance that one fdatasync fails
  size_t rotate_records = 0;  // rotate past this many records in a segment; 0: never
  // Chance that an Append on a wal::WriteHereScope that finds the log idle
  // writes and syncs its batch at once and runs its callbacks before it
  // returns, as wal::Log does on such a thread. What this models is the
  // runtime re-entered from its own Append; not modelled: the sync takes
  // no simulated time (no crash or event falls between the write and the
  // sync), and a rotation it makes due happens at once rather than on the
  // writer (wal::Log's own tests cover both).
  double appender_writes = 0.5;
  // Deliberate bug for the checker's own test: a synced append is reported
  // durable as soon as its batch is written, before its fdatasync.
  bool bug_ack_before_sync = false;
};

// The log's disk: survives the coordinator process. One live segment.
struct SimWalDisk {
  SimWalDisk();
  std::string segment;  // header + framed records
  size_t synced = 0;    // segment[0, synced) survives a crash
  uint64_t sequence = 1;
  uint64_t records = 0;  // in the live segment
  uint64_t rotations = 0;
  uint64_t appender_batches = 0;  // batches written by their appender (inline)
  // Power loss: keep the synced bytes and a random prefix of the rest.
  void Crash(std::mt19937_64& rng);
};

// One coordinator process's log. Not thread-safe. Destroying it is the
// process dying: callbacks not yet run never run. `done` callbacks run as
// events of their own, never inside Append, except when the appender
// writes its batch itself (SimWalOptions::appender_writes).
class SimWal final : public wal::DecisionLog {
 public:
  // `checkpoint` returns the records a rotation carries forward;
  // `on_failure` (may be empty) runs once, as an event, when the log fails.
  SimWal(EventLoop* loop, SimWalDisk* disk, const SimWalOptions& options,
         std::function<std::vector<wal::Record>()> checkpoint, std::function<void()> on_failure);
  ~SimWal() override;
  SimWal(const SimWal&) = delete;
  SimWal& operator=(const SimWal&) = delete;

  // Log::Open's recovery on `disk`: replays every good record in order,
  // cuts a torn tail, and fails with DATA_LOSS on anything else.
  static absl::Status Recover(SimWalDisk* disk,
                              const std::function<void(const wal::Record&)>& replay);

  // As wal::Log::Append. `done` may be empty.
  void Append(uint8_t type, std::string payload, bool sync,
              std::function<void(absl::Status)> done) override;
  absl::Status health() const override { return health_; }
  // Fault injection is switched off for the quiet phase.
  void set_sync_failure(double p) { options_.sync_failure = p; }

 private:
  struct Pending {
    uint8_t type;
    std::string payload;
    bool sync;
    std::function<void(absl::Status)> done;  // empty once called
  };
  void StartBatch();
  // Writes what is queued as one batch; tells whether it asked for a sync.
  bool WriteQueued(std::vector<Pending>* batch);
  void FinishBatch(std::vector<Pending> batch, bool sync);
  void Fail(const absl::Status& error, std::vector<Pending> batch);
  void MaybeRotate();

  EventLoop* const loop_;
  SimWalDisk* const disk_;
  SimWalOptions options_;
  const std::function<std::vector<wal::Record>()> checkpoint_;
  const std::function<void()> on_failure_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<Pending> queue_;
  bool writing_ = false;  // a batch is being written or synced
  bool scheduled_ = false;
  bool answering_ = false;  // running the callbacks of a batch an appender wrote
  absl::Status health_;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_SIM_WAL_H_
