// Internal to the WAL library: the state behind wal::Log, split over
// log.cc (opening, recovery, the public calls) and log_writer.cc (the writer
// thread: group commit, rotation, failure). Not for use outside this dir.
#ifndef TXCOORD_COORDINATOR_WAL_LOG_IMPL_H_
#define TXCOORD_COORDINATOR_WAL_LOG_IMPL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_reader.h"

namespace txcoord::wal {

class Log::Impl final {
 public:
  Impl(const LogOptions& options, FileSystem* fs);
  // Stops the writer thread after it has drained the queue.
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Open's work, on the caller's thread before the writer starts.
  absl::Status Recover(const std::function<void(const Record&)>& replay);
  void StartWriter();

  void Append(uint8_t type, absl::string_view payload, bool sync,
              std::function<void(absl::Status)> done);
  absl::Status AppendSync(uint8_t type, absl::string_view payload);
  absl::Status health() const;
  Stats stats() const;

 private:
  // A queued record, framed on the caller's thread so that CRCs are computed
  // in parallel and the writer only concatenates.
  struct Pending {
    std::string frame;
    bool sync = false;
    std::function<void(absl::Status)> done;
    absl::Status error;  // !ok: refused up front, never written
  };
  struct Segment {
    uint64_t sequence;
    uint64_t bytes;           // header, checkpoint and records: where appends go
    uint64_t allocated;       // the file's size: bytes, then preallocated zeros
    uint64_t fill_after = 0;  // no zeros written ahead before bytes reach this
  };
  // What the thread that owns the file must do before the next batch.
  enum class Upkeep { kNone, kRotate, kPreallocate };

  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (!queue_.empty() || upkeep_due_ || stopping_) && !writing_;
  }
  bool QueueHasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queued_bytes_ < options_.max_queued_bytes || stopping_ || !failure_.ok();
  }

  // Recovery (log.cc).
  absl::Status ReplaySegment(const SegmentFile& segment, bool is_last,
                             const std::function<void(const Record&)>& replay);
  absl::Status CutTornTail(const SegmentFile& segment, const std::string& data,
                           const SegmentScan& scan);

  // Writer thread (log_writer.cc). Each returns the error that must fail the log.
  void WriterLoop();
  // Writes `batch`, runs its callbacks and tells what upkeep the segment is
  // due for. The caller owns the file: writing_ is set, by it.
  Upkeep WriteAndAnswer(std::vector<Pending>* batch, bool by_appender);
  Upkeep UpkeepDue() const;
  absl::Status DoUpkeep(Upkeep upkeep);
  // Writes and syncs zeros up to preallocate_bytes past the appends (never
  // past segment_bytes); nothing when as many are there already, or none
  // are wanted.
  absl::Status Preallocate();
  absl::Status WriteBatch(const std::vector<Pending>& batch, bool by_appender);
  absl::Status TimedSync(WritableFile* file, const std::string& path);
  absl::Status Rotate();
  absl::Status CreateSegment(uint64_t sequence, uint16_t flags, const std::string& checkpoint,
                             std::unique_ptr<WritableFile>* file);
  absl::Status DeleteOlderSegments();
  void Fail(const absl::Status& cause);
  void PublishSegments() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SegmentPath(uint64_t sequence) const;

  const LogOptions options_;
  FileSystem* const fs_;

  mutable absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // A thread owns the file and the writer's state below: the writer thread,
  // or an appender that found the log idle and writes its batch itself.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // A batch written by an appender left upkeep due (a full segment, or too
  // few zeros ahead): the writer does it before anyone writes more.
  bool upkeep_due_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // Owned by Recover, then by whichever thread set writing_: no lock.
  std::unique_ptr<WritableFile> file_;
  std::deque<Segment> segments_;  // live, oldest first; back() takes appends
  bool unsynced_ = false;         // bytes written to back() since its last sync
  absl::Status writer_failure_;   // the writer's copy of failure_
  std::string buffer_;            // one batch, reused

  std::thread writer_;
  // The log whose callbacks this thread is running (the writer thread:
  // always), so that an Append from one neither waits nor writes.
  static inline thread_local const Impl* answering_ = nullptr;
};

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_LOG_IMPL_H_
