#include "sim/sim_wal.h"

#include "absl/strings/str_cat.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_reader.h"

namespace txcoord::sim {
namespace {

constexpr char kSegmentPath[] = "sim-coordinator/0000000000000001.wal";

std::string NewSegment(uint64_t sequence, const std::vector<wal::Record>& checkpoint) {
  std::string records;
  for (const wal::Record& r : checkpoint) wal::AppendRecord(r.type, r.payload, &records);
  wal::SegmentHeader header;
  header.flags = wal::kFlagBase;
  header.sequence = sequence;
  header.checkpoint_bytes = records.size();
  std::string segment;
  wal::AppendSegmentHeader(header, &segment);
  return segment + records;
}

}  // namespace

SimWalDisk::SimWalDisk() : segment(NewSegment(1, {})), synced(segment.size()) {}

void SimWalDisk::Crash(std::mt19937_64& rng) {
  const size_t unsynced = segment.size() - synced;
  segment.resize(synced + std::uniform_int_distribution<size_t>(0, unsynced)(rng));
  synced = segment.size();
}

SimWal::SimWal(EventLoop* loop, SimWalDisk* disk, const SimWalOptions& options,
               std::function<std::vector<wal::Record>()> checkpoint,
               std::function<void()> on_failure)
    : loop_(loop),
      disk_(disk),
      options_(options),
      checkpoint_(std::move(checkpoint)),
      on_failure_(std::move(on_failure)) {}

SimWal::~SimWal() { *alive_ = false; }

absl::Status SimWal::Recover(SimWalDisk* disk,
                             const std::function<void(const wal::Record&)>& replay) {
  std::vector<wal::Record> records;
  wal::SegmentScan scan = wal::ScanSegment(disk->segment, [&](const wal::RecordView& r) {
    records.push_back(wal::Record{r.type, std::string(r.payload)});
  });
  if (absl::Status verdict = wal::SegmentVerdict(kSegmentPath, scan, /*is_last=*/true);
      !verdict.ok()) {
    return verdict;
  }
  disk->segment.resize(scan.good_bytes);  // cut a torn tail, as Open does
  disk->synced = disk->segment.size();
  disk->records = records.size();
  for (const wal::Record& r : records) replay(r);
  return absl::OkStatus();
}

void SimWal::Append(uint8_t type, std::string payload, bool sync,
                    std::function<void(absl::Status)> done) {
  std::shared_ptr<bool> alive = alive_;
  auto later = [this, alive](std::function<void(absl::Status)> fn, absl::Status status) {
    if (!fn) return;
    loop_->After(absl::ZeroDuration(), [alive, fn = std::move(fn), status] {
      if (*alive) fn(status);
    });
  };
  if (type < wal::kMinUserType || type > wal::kMaxUserType ||
      payload.size() > wal::kMaxPayloadBytes) {
    later(std::move(done), absl::InvalidArgumentError("bad record type or size"));
    return;
  }
  if (!health_.ok()) {
    later(std::move(done), health_);
    return;
  }
  queue_.push_back(Pending{type, std::move(payload), sync, std::move(done)});
  if (!writing_ && !scheduled_ && !answering_ && wal::WriteHereScope::active() &&
      loop_->Chance(options_.appender_writes)) {
    // The appending thread finds the log idle and writes the batch itself.
    std::vector<Pending> batch;
    const bool synced = WriteQueued(&batch);
    ++disk_->appender_batches;
    answering_ = true;
    FinishBatch(std::move(batch), synced);
    answering_ = false;
    return;
  }
  if (!writing_ && !scheduled_) {
    // The writer wakes up a moment later: what is queued by then is one batch.
    scheduled_ = true;
    loop_->After(options_.write_latency, [this, alive] {
      if (*alive) StartBatch();
    });
  }
}

bool SimWal::WriteQueued(std::vector<Pending>* batch) {
  writing_ = true;
  *batch = std::move(queue_);
  queue_.clear();
  bool sync = false;
  std::string bytes;
  for (const Pending& p : *batch) {
    wal::AppendRecord(p.type, p.payload, &bytes);
    sync |= p.sync;
  }
  // Written at once (one write call): from here a crash may keep any prefix.
  disk_->segment += bytes;
  disk_->records += batch->size();
  return sync;
}

void SimWal::StartBatch() {
  scheduled_ = false;
  if (queue_.empty() || writing_ || !health_.ok()) return;
  std::vector<Pending> batch;
  const bool sync = WriteQueued(&batch);
  const absl::Duration latency =
      sync ? loop_->UniformDuration(options_.min_sync, options_.max_sync) : options_.write_latency;
  std::shared_ptr<bool> alive = alive_;
  if (sync && options_.bug_ack_before_sync) {
    loop_->Trace(absl::StrCat("coord log BUG: ", batch.size(),
                              " record(s) reported durable before their fdatasync"));
    for (Pending& p : batch) {
      if (!p.done) continue;
      loop_->After(absl::ZeroDuration(), [alive, done = std::move(p.done)] {
        if (*alive) done(absl::OkStatus());
      });
      p.done = nullptr;
    }
  }
  loop_->After(latency, [this, alive, batch = std::move(batch), sync]() mutable {
    if (*alive) FinishBatch(std::move(batch), sync);
  });
}

void SimWal::FinishBatch(std::vector<Pending> batch, bool sync) {
  if (sync) {
    if (loop_->Chance(options_.sync_failure)) {
      Fail(absl::DataLossError("fdatasync: EIO (simulated)"), std::move(batch));
      return;
    }
    disk_->synced = disk_->segment.size();  // also makes earlier unsynced records durable
    loop_->Trace(absl::StrCat("coord log: fdatasync, ", batch.size(), " record(s) durable"));
  }
  writing_ = false;
  for (Pending& p : batch) {
    if (p.done) p.done(absl::OkStatus());
  }
  if (!health_.ok()) return;
  MaybeRotate();
  if (!queue_.empty()) StartBatch();
}

void SimWal::Fail(const absl::Status& error, std::vector<Pending> batch) {
  health_ = absl::FailedPreconditionError(absl::StrCat("log failed: ", error.ToString()));
  loop_->Trace(absl::StrCat("coord log: FAILED: ", health_.message()));
  writing_ = false;
  for (Pending& p : queue_) batch.push_back(std::move(p));
  queue_.clear();
  for (Pending& p : batch) {
    if (p.done) p.done(health_);
  }
  if (on_failure_) {
    std::shared_ptr<bool> alive = alive_;
    loop_->After(absl::ZeroDuration(), [alive, fn = on_failure_] {
      if (*alive) fn();
    });
  }
}

void SimWal::MaybeRotate() {
  if (options_.rotate_records == 0 || disk_->records <= options_.rotate_records || !checkpoint_) {
    return;
  }
  // The new base segment replaces the old one only once durable, so the
  // switch is atomic for a crash (the WAL's own tests cover the steps).
  std::vector<wal::Record> live = checkpoint_();
  disk_->segment = NewSegment(++disk_->sequence, live);
  disk_->synced = disk_->segment.size();
  disk_->records = live.size();
  ++disk_->rotations;
  loop_->Trace(absl::StrCat("coord log: rotated, checkpoint of ", live.size(), " live commit(s)"));
}

}  // namespace txcoord::sim
