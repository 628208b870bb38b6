// Opening a log: plan the directory, finish what a crash interrupted, replay,
// cut a torn tail; and the public calls that only touch the queue.
#include "coordinator/wal/log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/check.h"
#include "common/logging.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_impl.h"

namespace txcoord::wal {
namespace {

std::string ParentDir(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : d.substr(0, slash);
}

}  // namespace

Log::Impl::Impl(const LogOptions& options, FileSystem* fs) : options_(options), fs_(fs) {}

Log::Impl::~Impl() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

absl::Status Log::Impl::Recover(const std::function<void(const Record&)>& replay) {
  // The directory entry of a new data dir must itself be durable, or a
  // crash could lose the whole log together with acknowledged records.
  if (absl::Status s = fs_->CreateDir(options_.dir); !s.ok()) return s;
  if (absl::Status s = fs_->SyncDir(ParentDir(options_.dir)); !s.ok()) return s;

  LogPlan plan;
  if (absl::Status s = PlanLog(options_.dir, fs_, &plan); !s.ok()) return s;
  for (size_t i = 0; i < plan.live.size(); ++i) {
    absl::Status s = ReplaySegment(plan.live[i], i + 1 == plan.live.size(), replay);
    if (!s.ok()) return s;
  }
  // Only once the live segments proved good (a refused open changes
  // nothing): leftovers of a rotation that a crash cut short, i.e. an
  // unnamed new segment, or old segments its checkpoint superseded.
  for (const std::string& tmp : plan.tmp_files) {
    TXLOG(INFO) << "wal: removing unfinished segment " << tmp;
    if (absl::Status s = fs_->Remove(tmp); !s.ok()) return s;
  }
  for (const SegmentFile& old : plan.obsolete) {
    TXLOG(INFO) << "wal: removing " << old.path << ", superseded by a checkpoint";
    if (absl::Status s = fs_->Remove(old.path); !s.ok()) return s;
  }
  if (!plan.tmp_files.empty() || !plan.obsolete.empty()) {
    if (absl::Status s = fs_->SyncDir(options_.dir); !s.ok()) return s;
  }
  if (plan.live.empty()) {
    if (absl::Status s = CreateSegment(1, kFlagBase, "", &file_); !s.ok()) return s;
    segments_.push_back(Segment{1, kSegmentHeaderBytes, kSegmentHeaderBytes, 0});
    TXLOG(INFO) << "wal: created " << SegmentPath(1);
  } else {
    auto file = fs_->NewAppendableFile(plan.live.back().path);
    if (!file.ok()) return file.status();
    file_ = std::move(*file);
  }
  // Zeros ahead of the appends (those a last run wrote were cut above).
  if (absl::Status s = Preallocate(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  PublishSegments();
  return absl::OkStatus();
}

absl::Status Log::Impl::ReplaySegment(const SegmentFile& segment, bool is_last,
                                      const std::function<void(const Record&)>& replay) {
  std::string data;
  if (absl::Status s = fs_->ReadFile(segment.path, &data); !s.ok()) return s;
  uint64_t replayed = 0;
  const SegmentScan scan = ScanSegment(data, [&](const RecordView& r) {
    ++replayed;
    if (replay) replay(Record{r.type, std::string(r.payload)});
  });
  if (absl::Status s = SegmentVerdict(segment.path, scan, is_last); !s.ok()) return s;
  if (scan.state == SegmentScan::State::kTorn) {
    if (absl::Status s = CutTornTail(segment, data, scan); !s.ok()) return s;
  } else if (scan.state == SegmentScan::State::kZeroTail) {
    // Space written ahead of the appends: appends go on from the last
    // record, after the file's end, so the zeros go and are written again.
    if (absl::Status s = fs_->Truncate(segment.path, scan.good_bytes); !s.ok()) return s;
    TXLOG(INFO) << "wal: " << segment.path << " ends at offset " << scan.good_bytes << " ("
                << scan.file_bytes - scan.good_bytes << " zero bytes after it cut)";
  }
  // PlanLog refuses a gap in the sequence: replayed segments are consecutive.
  TXCOORD_CHECK(segments_.empty() || segments_.back().sequence + 1 == segment.sequence)
      << "wal: segment " << segment.sequence << " replayed after " << segments_.back().sequence;
  segments_.push_back(Segment{segment.sequence, scan.good_bytes, scan.good_bytes, 0});
  absl::MutexLock lock(&mu_);
  stats_.replayed += replayed;
  return absl::OkStatus();
}

absl::Status Log::Impl::CutTornTail(const SegmentFile& segment, const std::string& data,
                                    const SegmentScan& scan) {
  // Keep the cut bytes: if this was media corruption rather than a torn
  // write, an operator can still look at what was there.
  const std::string broken = absl::StrCat(segment.path, ".", scan.good_bytes, kBrokenSuffix);
  auto file = fs_->NewWritableFile(broken);
  if (!file.ok()) return file.status();
  absl::Status s =
      (*file)->Append(TornBytesWorthKeeping(absl::string_view(data).substr(scan.good_bytes)));
  if (s.ok()) s = (*file)->Sync();
  if (absl::Status c = (*file)->Close(); s.ok()) s = c;
  if (s.ok()) s = fs_->Truncate(segment.path, scan.good_bytes);
  if (s.ok()) s = fs_->SyncDir(options_.dir);
  if (!s.ok()) return s;
  TXLOG(WARNING) << "wal: cut the torn tail of " << segment.path << " at offset " << scan.good_bytes
                 << " (" << scan.file_bytes - scan.good_bytes << " bytes: " << scan.problem
                 << "); copy kept in " << broken;
  return absl::OkStatus();
}

void Log::Impl::StartWriter() {
  writer_ = std::thread([this] { WriterLoop(); });
}

void Log::Impl::Append(uint8_t type, absl::string_view payload, bool sync,
                       std::function<void(absl::Status)> done) {
  Pending p;
  p.sync = sync;
  p.done = std::move(done);
  if (type < kMinUserType || type > kMaxUserType) {
    p.error = absl::InvalidArgumentError(absl::StrCat("wal record type ", type, " not in 1..127"));
  } else if (payload.size() > kMaxPayloadBytes) {
    p.error = absl::InvalidArgumentError(absl::StrCat("wal record payload of ", payload.size(),
                                                      " bytes exceeds ", kMaxPayloadBytes));
  } else {
    p.frame.reserve(kRecordHeaderBytes + payload.size());
    AppendRecord(type, payload, &p.frame);
  }
  // A callback appending again only queues: its batch is still being
  // answered, and the next one is the writer's.
  const bool in_callback = answering_ == this;
  // A record nobody waits for, alone in the queue, costs this thread one
  // write call (no sync, no callback): cheaper than waking the writer.
  const bool lone_write = !sync && !p.done;
  std::vector<Pending> batch;
  {
    absl::MutexLock lock(&mu_);
    if (!in_callback) mu_.Await(absl::Condition(this, &Impl::QueueHasRoom));
    queued_bytes_ += p.frame.size();
    queue_.push_back(std::move(p));
    const bool may_write = WriteHereScope::active() || (lone_write && queue_.size() == 1);
    if (in_callback || !options_.appenders_write || !may_write || writing_ || upkeep_due_ ||
        stopping_ || !failure_.ok()) {
      return;
    }
    // Idle: this thread writes what is queued, its own record with it.
    batch.swap(queue_);
    queued_bytes_ = 0;
    writing_ = true;
  }
  // Restored after: a callback of another log's batch may append here.
  const Impl* const outer = std::exchange(answering_, this);
  const Upkeep upkeep = WriteAndAnswer(&batch, /*by_appender=*/true);
  answering_ = outer;
  absl::MutexLock lock(&mu_);
  writing_ = false;
  upkeep_due_ = upkeep != Upkeep::kNone;
}

absl::Status Log::Impl::AppendSync(uint8_t type, absl::string_view payload) {
  if (answering_ == this) {
    return absl::FailedPreconditionError("wal AppendSync from a done callback would deadlock");
  }
  absl::Notification durable;
  absl::Status result;
  Append(type, payload, /*sync=*/true, [&](absl::Status s) {
    result = std::move(s);
    durable.Notify();
  });
  durable.WaitForNotification();
  return result;
}

absl::Status Log::Impl::health() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

Log::Stats Log::Impl::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Log::~Log() = default;

absl::StatusOr<std::unique_ptr<Log>> Log::Open(const LogOptions& options,
                                               const std::function<void(const Record&)>& replay) {
  if (options.dir.empty()) return absl::InvalidArgumentError("wal: LogOptions.dir is empty");
  if (options.segment_bytes == 0) {
    return absl::InvalidArgumentError("wal: LogOptions.segment_bytes is 0");
  }
  auto impl = std::make_unique<Impl>(options, options.fs ? options.fs : PosixFileSystem());
  if (absl::Status s = impl->Recover(replay); !s.ok()) return s;
  impl->StartWriter();
  return std::unique_ptr<Log>(new Log(std::move(impl)));
}

void Log::Append(uint8_t type, std::string payload, bool sync,
                 std::function<void(absl::Status)> done) {
  impl_->Append(type, payload, sync, std::move(done));
}

absl::Status Log::AppendSync(uint8_t type, std::string payload) {
  return impl_->AppendSync(type, payload);
}

absl::Status Log::health() const { return impl_->health(); }
Log::Stats Log::stats() const { return impl_->stats(); }

}  // namespace txcoord::wal
