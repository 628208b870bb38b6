// The coordinator's write-ahead log: append-only segment files of framed,
// CRC32C-checked records, made durable in batches of everything queued,
// one write and one fdatasync each (group commit), by a writer thread or,
// when the log is idle, by an appending thread that waits for the disk
// anyway (WriteHereScope). Format: docs/wal-format.md.
//
//   auto log = wal::Log::Open(options, [&](const wal::Record& r) { ... });
//   (*log)->Append(kCommit, payload, /*sync=*/true,
//                  [](absl::Status s) { /* durable (or failed) */ });
#ifndef TXCOORD_COORDINATOR_WAL_LOG_H_
#define TXCOORD_COORDINATOR_WAL_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/wal/decision_log.h"
#include "coordinator/wal/file_system.h"

namespace txcoord::wal {

// One logical record as the log's user sees it.
struct Record {
  uint8_t type = 0;     // user-defined, 1..127 (128..255 reserved by the log)
  std::string payload;  // at most kMaxPayloadBytes
};

inline constexpr size_t kMaxPayloadBytes = 1 << 20;

struct LogOptions {
  std::string dir;                       // created if missing
  FileSystem* fs = nullptr;              // nullptr: the real POSIX file system
  uint64_t segment_bytes = 64ull << 20;  // rotate past this size
  // Called on the writer thread, with no log lock held, at each rotation:
  // returns the records that must survive the deletion of every older
  // segment (the still-open committed transactions). They are written first
  // in the new segment, which gets its name only once they are durable;
  // then older segments are deleted. nullptr: never delete old segments.
  //
  // It runs after the `done` callbacks of every record in the older
  // segments, so state kept up to date in those callbacks is complete; a
  // record whose Append races with it lands in the new segment after the
  // checkpoint. Replay can thus see a record twice (a checkpoint copy, then
  // the original of an Append that raced with it): records must be
  // idempotent. Segments older than the newest checkpoint are never replayed.
  std::function<std::vector<Record>()> checkpoint;

  // An Append on a thread in a WriteHereScope that finds no batch being
  // written writes (and syncs) it there, and runs its callbacks before it
  // returns; so does, on any thread, an Append without sync and without a
  // callback that finds nothing else queued (one write call). false: the
  // writer thread writes every batch.
  bool appenders_write = true;
  // Keeps at least half this many zero bytes written and synced ahead of
  // the appends in the segment taking them (topped up to this many, at most
  // to segment_bytes, by the writer thread after a batch), so that a
  // batch's fdatasync finds the file's size already durable. 0: every batch
  // extends the file. Open cuts the zeros past the last record and writes
  // them again; a segment rotates only once its records pass its zeros. A
  // zero write that fails (a full disk) is logged and skipped, tried again
  // half this many bytes later; a failed sync of them fails the log.
  uint64_t preallocate_bytes = 0;
  // Append waits while this many bytes are queued and not yet written, so a
  // producer faster than the disk cannot grow memory without bound. Appends
  // from a `done` callback never wait.
  uint64_t max_queued_bytes = 64ull << 20;
  // Called on the thread that synced (the writer, or an appender) with the
  // duration of every fdatasync (for the WAL fsync-time metric). Must be
  // quick, thread-safe, and must not call the log.
  std::function<void(absl::Duration)> sync_observer;
  // An fdatasync slower than this is logged at WARNING with the file name.
  absl::Duration slow_sync_warning = absl::Seconds(1);
};

// Thread-safe. The coordinator's runtime sees it as its DecisionLog.
class Log final : public DecisionLog {
 public:
  // Opens `options.dir`, replays every record in order through `replay`
  // (on the calling thread, before returning), cuts a torn tail of the last
  // segment at the last good record (logged at WARNING, with a copy) and the
  // zeros written ahead after it (INFO; then writes them again), and refuses to open with
  // DATA_LOSS naming file and offset if a record before the tail is bad.
  // On failure, records already passed to `replay` must be discarded.
  static absl::StatusOr<std::unique_ptr<Log>> Open(
      const LogOptions& options, const std::function<void(const Record&)>& replay);

  // Writes what is queued, syncs, stops the writer thread. Appends must
  // not race with destruction: the log must outlive every Append call, not
  // only its callbacks (an appender that wrote its batch takes the log's
  // lock once more after the callbacks).
  ~Log() override;
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Queues a record. `done` (may be empty) runs once the record is written
  // and, if `sync`, durable; or with the error that made the log fail. It
  // runs on the writer thread; or, on a thread in a WriteHereScope that
  // found the log idle (options.appenders_write), on that thread before
  // Append returns: this thread then wrote and synced the batch itself. A
  // record without sync and without `done`, appended to an idle log with
  // nothing queued, is written by the calling thread whatever its scope. A record appended without
  // sync becomes durable with the next synced batch. After any write or sync failure the log is
  // failed for good: `done` gets that error for this and every later append.
  // A type outside 1..127 or a payload over kMaxPayloadBytes gets
  // INVALID_ARGUMENT and leaves the log healthy. Waits while
  // `max_queued_bytes` are queued (never from a `done` callback). An
  // Append from a `done` callback only queues.
  void Append(uint8_t type, std::string payload, bool sync,
              std::function<void(absl::Status)> done) override;

  // Appends and waits until durable (convenience for callers that block).
  // FAILED_PRECONDITION if called from a `done` callback: it would deadlock.
  ABSL_MUST_USE_RESULT absl::Status AppendSync(uint8_t type, std::string payload);

  // OK, or the error that failed the log: FAILED_PRECONDITION
  // "log failed: <the original error>", the same status every append gets.
  absl::Status health() const override;

  struct Stats {
    uint64_t records = 0;
    uint64_t batches = 0;                 // write+fdatasync rounds
    uint64_t appender_batches = 0;        // of those, written by the appending thread
    uint64_t segments = 0;                // live segment files
    uint64_t bytes = 0;                   // bytes in live segments
    uint64_t syncs = 0;                   // fdatasync calls on segments
    uint64_t rotations = 0;               // segments started since Open
    uint64_t preallocations = 0;          // zero fills ahead of the appends (preallocate_bytes)
    uint64_t preallocation_failures = 0;  // zero writes that failed (a full disk): skipped
    uint64_t replayed = 0;                // records replayed by Open
  };
  Stats stats() const;

 private:
  class Impl;
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_LOG_H_
