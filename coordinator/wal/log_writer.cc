// The writer thread: group commit (one write and at most one fdatasync per
// batch of everything queued), rotation with checkpoint, zeros written ahead
// of the appends, and fail-stop on the first I/O error. No lock is ever held
// across file I/O.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/logging.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_impl.h"

namespace txcoord::wal {
namespace {

// A batch buffer grown by a burst is given back, so memory follows the
// current load rather than the worst moment since start.
constexpr size_t kKeepBufferBytes = 4 << 20;

}  // namespace

std::string Log::Impl::SegmentPath(uint64_t sequence) const {
  return JoinPath(options_.dir, SegmentFileName(sequence));
}

void Log::Impl::PublishSegments() {
  stats_.segments = segments_.size();
  stats_.bytes = 0;
  for (const Segment& s : segments_) stats_.bytes += s.bytes;
}

void Log::Impl::WriterLoop() {
  answering_ = this;
  std::vector<Pending> batch;
  for (;;) {
    bool upkeep_only = false;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Impl::WriterHasWork));
      if (queue_.empty() && !upkeep_due_) break;  // stopping, and everything queued is done
      // An appender's batch left upkeep due: do it before writing more.
      upkeep_only = upkeep_due_;
      upkeep_due_ = false;
      stopping = stopping_;
      if (!upkeep_only) {
        batch.swap(queue_);
        queued_bytes_ = 0;
      }
      writing_ = true;
    }
    Upkeep upkeep = upkeep_only ? UpkeepDue() : WriteAndAnswer(&batch, /*by_appender=*/false);
    // Zeros ahead of appends that will not come are a waste of a sync.
    if (stopping && upkeep == Upkeep::kPreallocate) upkeep = Upkeep::kNone;
    if (absl::Status s = DoUpkeep(upkeep); !s.ok()) Fail(s);
    absl::MutexLock lock(&mu_);
    writing_ = false;
  }
  // A clean stop leaves nothing unsynced behind, even unsynced-only appends.
  if (writer_failure_.ok() && unsynced_) {
    if (absl::Status s = TimedSync(file_.get(), SegmentPath(segments_.back().sequence)); !s.ok()) {
      Fail(s);
    }
  }
  if (file_ != nullptr) {
    if (absl::Status s = file_->Close(); !s.ok()) {
      TXLOG(WARNING) << "wal: " << s;
    }
  }
}

Log::Impl::Upkeep Log::Impl::WriteAndAnswer(std::vector<Pending>* batch, bool by_appender) {
  const absl::Status status = WriteBatch(*batch, by_appender);
  for (Pending& p : *batch) {
    if (p.done) p.done(p.error.ok() ? status : p.error);
  }
  batch->clear();
  // After the callbacks, so that a checkpoint built from state they update
  // covers every record in the segments a rotation lets us delete, and
  // so that zeros written ahead delay no answer of this batch.
  return UpkeepDue();
}

Log::Impl::Upkeep Log::Impl::UpkeepDue() const {
  if (!writer_failure_.ok()) return Upkeep::kNone;
  const Segment& segment = segments_.back();
  if (segment.bytes >= options_.segment_bytes) return Upkeep::kRotate;
  // Topped up once less than half is left, so that the zeros are written in
  // a few large pieces rather than after every batch.
  const uint64_t wanted = options_.preallocate_bytes;
  if (wanted > 0 && segment.allocated < segment.bytes + wanted / 2 &&
      segment.allocated < options_.segment_bytes && segment.bytes >= segment.fill_after) {
    return Upkeep::kPreallocate;
  }
  return Upkeep::kNone;
}

absl::Status Log::Impl::DoUpkeep(Upkeep upkeep) {
  switch (upkeep) {
    case Upkeep::kNone:
      return absl::OkStatus();
    case Upkeep::kRotate:
      return Rotate();
    case Upkeep::kPreallocate:
      return Preallocate();
  }
  return absl::OkStatus();
}

absl::Status Log::Impl::Preallocate() {
  Segment& segment = segments_.back();
  const uint64_t end = std::min(segment.bytes + options_.preallocate_bytes, options_.segment_bytes);
  if (end <= segment.allocated) return absl::OkStatus();
  if (absl::Status s = file_->Preallocate(end); !s.ok()) {
    // Zeros are an optimisation: a full disk may still take the records
    // themselves, and the zeros written so far lie past them, harmless.
    // Tried again once another half of preallocate_bytes is appended.
    segment.fill_after = segment.bytes + options_.preallocate_bytes / 2;
    TXLOG(WARNING) << "wal: " << s << "; appends go on without zeros ahead, next try after "
                   << segment.fill_after - segment.bytes << " more bytes";
    absl::MutexLock lock(&mu_);
    ++stats_.preallocation_failures;
    return absl::OkStatus();
  }
  // Not timed for sync_observer: the metric is the time a batch's sync
  // takes, and this one writes up to preallocate_bytes. A failure is a
  // failed fdatasync like any other: fatal.
  if (absl::Status s = file_->Sync(); !s.ok()) return s;
  segment.allocated = end;
  unsynced_ = false;  // the sync covered the batches before it too
  absl::MutexLock lock(&mu_);
  ++stats_.preallocations;
  ++stats_.syncs;
  return absl::OkStatus();
}

absl::Status Log::Impl::WriteBatch(const std::vector<Pending>& batch, bool by_appender) {
  if (!writer_failure_.ok()) return writer_failure_;
  buffer_.clear();
  bool want_sync = false;
  uint64_t records = 0;
  for (const Pending& p : batch) {
    if (!p.error.ok()) {
      TXCOORD_CHECK(p.frame.empty()) << "wal: a refused record was framed";
      continue;
    }
    TXCOORD_CHECK(p.frame.size() >= kRecordHeaderBytes) << "wal: an unframed record was queued";
    buffer_.append(p.frame);
    want_sync |= p.sync;
    ++records;
  }
  if (records == 0) return absl::OkStatus();
  TXCOORD_CHECK(file_ != nullptr && !segments_.empty()) << "wal: writing with no open segment";
  Segment& segment = segments_.back();
  const std::string path = SegmentPath(segment.sequence);
  if (absl::Status s = file_->Append(buffer_); !s.ok()) {
    Fail(s);
    return writer_failure_;
  }
  segment.bytes += buffer_.size();
  segment.allocated = std::max(segment.allocated, segment.bytes);
  unsynced_ = true;
  if (want_sync) {
    if (absl::Status s = TimedSync(file_.get(), path); !s.ok()) {
      Fail(s);
      return writer_failure_;
    }
    unsynced_ = false;
  }
  if (buffer_.capacity() > kKeepBufferBytes) std::string().swap(buffer_);
  absl::MutexLock lock(&mu_);
  stats_.records += records;
  ++stats_.batches;
  if (by_appender) ++stats_.appender_batches;
  PublishSegments();
  return absl::OkStatus();
}

absl::Status Log::Impl::TimedSync(WritableFile* file, const std::string& path) {
  const absl::Time start = absl::Now();
  absl::Status s = file->Sync();
  const absl::Duration took = absl::Now() - start;
  if (options_.sync_observer) options_.sync_observer(took);
  if (took >= options_.slow_sync_warning) {
    TXLOG(WARNING) << "wal: fdatasync of " << path << " took " << absl::FormatDuration(took);
  }
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.syncs;
  }
  return s;
}

absl::Status Log::Impl::Rotate() {
  TXCOORD_CHECK(writer_failure_.ok()) << "wal: rotating a failed log";
  // The old segment must be complete on disk before a newer one exists:
  // Open treats a short record in any segment but the last as corruption.
  const uint64_t old_sequence = segments_.back().sequence;
  if (unsynced_) {
    if (absl::Status s = TimedSync(file_.get(), SegmentPath(old_sequence)); !s.ok()) return s;
    unsynced_ = false;
  }
  // Nor may it end in zeros, and it does not: none are written past
  // segment_bytes (Preallocate), and it rotates once its records reach that.
  TXCOORD_CHECK(segments_.back().allocated <= segments_.back().bytes)
      << "wal: segment " << old_sequence << " closes with zeros after its records";
  std::string checkpoint;
  uint64_t checkpoint_records = 0;
  if (options_.checkpoint) {
    for (const Record& r : options_.checkpoint()) {
      if (r.type < kMinUserType || r.type > kMaxUserType || r.payload.size() > kMaxPayloadBytes) {
        return absl::InvalidArgumentError(absl::StrCat("checkpoint record ", checkpoint_records,
                                                       " has type ", r.type, " and ",
                                                       r.payload.size(), " payload bytes"));
      }
      AppendRecord(r.type, r.payload, &checkpoint);
      ++checkpoint_records;
    }
  }
  const uint64_t sequence = old_sequence + 1;
  std::unique_ptr<WritableFile> file;
  const uint16_t flags = options_.checkpoint ? kFlagBase : 0;
  if (absl::Status s = CreateSegment(sequence, flags, checkpoint, &file); !s.ok()) return s;
  if (absl::Status s = file_->Close(); !s.ok()) {
    // Its bytes are synced; a failed close loses nothing worth stopping for.
    TXLOG(WARNING) << "wal: " << s;
  }
  file_ = std::move(file);
  // Invariant: live segments are numbered consecutively, oldest first;
  // appends go to the newest.
  TXCOORD_CHECK(segments_.back().sequence + 1 == sequence)
      << "wal: segment " << sequence << " follows " << segments_.back().sequence;
  const uint64_t bytes = kSegmentHeaderBytes + checkpoint.size();
  segments_.push_back(Segment{sequence, bytes, bytes, 0});
  const size_t older = segments_.size() - 1;
  if (options_.checkpoint) {
    if (absl::Status s = DeleteOlderSegments(); !s.ok()) return s;
  }
  if (absl::Status s = Preallocate(); !s.ok()) return s;
  TXLOG(INFO) << "wal: rotated to " << SegmentPath(sequence) << " with a checkpoint of "
              << checkpoint_records << " records (" << checkpoint.size() << " bytes)"
              << (options_.checkpoint ? absl::StrCat("; deleted ", older, " older segments")
                                      : std::string("; keeping older segments"));
  absl::MutexLock lock(&mu_);
  ++stats_.rotations;
  PublishSegments();
  return absl::OkStatus();
}

absl::Status Log::Impl::CreateSegment(uint64_t sequence, uint16_t flags,
                                      const std::string& checkpoint,
                                      std::unique_ptr<WritableFile>* file) {
  // Written and synced under a temporary name, then renamed and the
  // directory synced: a segment that exists under its real name always has
  // a whole header and its whole checkpoint.
  const std::string path = SegmentPath(sequence);
  const std::string tmp = absl::StrCat(path, kTmpSuffix);
  SegmentHeader header;
  header.flags = flags;
  header.sequence = sequence;
  header.checkpoint_bytes = checkpoint.size();
  std::string bytes;
  AppendSegmentHeader(header, &bytes);
  bytes.append(checkpoint);
  auto created = fs_->NewWritableFile(tmp);
  if (!created.ok()) return created.status();
  if (absl::Status s = (*created)->Append(bytes); !s.ok()) return s;
  if (absl::Status s = TimedSync(created->get(), tmp); !s.ok()) return s;
  if (absl::Status s = fs_->Rename(tmp, path); !s.ok()) return s;
  if (absl::Status s = fs_->SyncDir(options_.dir); !s.ok()) return s;
  // Reopened under its real name so that later errors name the right file.
  if (absl::Status s = (*created)->Close(); !s.ok()) return s;
  auto reopened = fs_->NewAppendableFile(path);
  if (!reopened.ok()) return reopened.status();
  *file = std::move(*reopened);
  return absl::OkStatus();
}

absl::Status Log::Impl::DeleteOlderSegments() {
  // Oldest first, so that a crash midway leaves a contiguous run of
  // segments; Open deletes whatever the newest checkpoint superseded.
  while (segments_.size() > 1) {
    if (absl::Status s = fs_->Remove(SegmentPath(segments_.front().sequence)); !s.ok()) return s;
    segments_.pop_front();
  }
  return fs_->SyncDir(options_.dir);
}

void Log::Impl::Fail(const absl::Status& cause) {
  // Invariant: the log fails once and stays failed (a failed fsync may
  // have dropped dirty pages: nothing written after it can be trusted), so
  // every path checks writer_failure_ before any I/O and nothing clears it.
  TXCOORD_CHECK(writer_failure_.ok() && !cause.ok()) << "wal: failed twice, or with OK: " << cause;
  writer_failure_ = absl::FailedPreconditionError(absl::StrCat("log failed: ", cause.ToString()));
  TXLOG(ERROR) << "wal: " << writer_failure_.message()
               << "; every append fails from now on, restart to recover";
  absl::MutexLock lock(&mu_);
  TXCOORD_CHECK(failure_.ok()) << "wal: failure_ set before the writer failed";
  failure_ = writer_failure_;
}

}  // namespace txcoord::wal
