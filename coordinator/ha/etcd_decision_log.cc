#include "coordinator/ha/etcd_decision_log.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/txid.h"
#include "coordinator/records.h"

namespace txcoord::coordinator::ha {

using cluster::TxnOp;

namespace {

constexpr char kTxDir[] = "tx/";
constexpr char kRetainedDir[] = "retained/";
constexpr char kExpiredKey[] = "expired";
constexpr char kCommitKey[] = "commit";
constexpr char kOnePhaseKey[] = "onephase";
constexpr char kMarkDir[] = "mark/";

bool Retryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

absl::Status LoadDecisions(cluster::Etcd* etcd, const SpaceKeys& keys, RecoveryState* state,
                           size_t* keys_read) {
  absl::StatusOr<cluster::RangeResult> read = etcd->GetPrefix(keys.log);
  if (!read.ok()) return read.status();
  if (keys_read != nullptr) *keys_read = read->kvs.size();
  // Keys sort as recovery needs them: "expired" < "retained/" < "tx/", and
  // within a transaction "commit" < "mark/" < "onephase".
  for (const cluster::KeyValue& kv : read->kvs) {
    const absl::string_view name = absl::string_view(kv.key).substr(keys.log.size());
    uint8_t type = 0;
    if (name == kExpiredKey) {
      type = kRecordExpired;
    } else if (absl::StartsWith(name, kRetainedDir)) {
      type = kRecordRetained;
    } else if (absl::StartsWith(name, kTxDir)) {
      std::vector<absl::string_view> parts = absl::StrSplit(name.substr(3), '/');
      if (parts.size() == 2 && parts[1] == kCommitKey) {
        type = kRecordCommit;
      } else if (parts.size() == 2 && parts[1] == kOnePhaseKey) {
        type = kRecordOnePhase;
      } else if (parts.size() == 3 && parts[1] == "mark") {
        type = kRecordMarkDone;
      }
    }
    if (type == 0) {
      return absl::DataLossError(
          absl::StrCat("decision log on ", etcd->Describe(), ": unknown key ", kv.key));
    }
    if (absl::Status applied = state->Apply(type, kv.value); !applied.ok()) {
      return absl::DataLossError(absl::StrCat("decision log on ", etcd->Describe(), ": key ",
                                              kv.key, ": ", applied.message()));
    }
  }
  return absl::OkStatus();
}

struct EtcdDecisionLog::Batch {
  std::vector<Pending> records;
  std::vector<TxnOp> ops;
  // Applied to the writer's state once etcd has the writes, in order:
  // txids that now have keys (a value) or none (nullopt).
  std::vector<std::pair<std::string, std::optional<Keys>>> key_changes;
  std::vector<std::pair<uint64_t, uint64_t>> chunks_written;
  std::vector<std::pair<uint64_t, uint64_t>> chunks_deleted;
};

EtcdDecisionLog::EtcdDecisionLog(cluster::Etcd* etcd, Scheduler* scheduler, EtcdLogOptions options,
                                 const RecoveryState& recovered,
                                 std::function<void(const absl::Status&)> on_failure)
    : etcd_(etcd),
      options_(std::move(options)),
      on_failure_(std::move(on_failure)),
      retained_(recovered.outcomes()),
      last_prune_(scheduler->Now()),
      backoff_(options_.min_backoff),
      scope_(scheduler) {
  for (const auto& [txid, commit] : recovered.unfinished()) with_keys_[txid] = Keys::kCommit;
  for (const auto& [txid, one_phase] : recovered.one_phase()) with_keys_[txid] = Keys::kOnePhase;
  // Chunks read at the start are in etcd: pruning deletes them too.
  for (const OutcomeChunk& chunk : retained_.Chunks()) {
    written_chunks_.insert({chunk.epoch, chunk.first_sequence});
  }
}

EtcdDecisionLog::~EtcdDecisionLog() { Close(); }

std::vector<cluster::TxnCompare> EtcdDecisionLog::Guard() const {
  if (options_.unfenced_for_tests) return {};
  return options_.ownership.Guard();
}

std::string EtcdDecisionLog::TxKey(const std::string& txid) const {
  return absl::StrCat(options_.keys.log, kTxDir, txid, "/");
}

std::string EtcdDecisionLog::ChunkKey(uint64_t epoch, uint64_t first_sequence) const {
  // Zero-padded, so that keys sort as the chunks do.
  return absl::StrFormat("%s%s%020d/%020d", options_.keys.log, kRetainedDir, epoch, first_sequence);
}

void EtcdDecisionLog::Append(uint8_t type, std::string payload, bool sync,
                             std::function<void(absl::Status)> done) {
  absl::MutexLock lock(&mu_);
  if (!failure_.ok() || closed_) {
    const absl::Status status =
        failure_.ok() ? absl::FailedPreconditionError("decision log on etcd closed") : failure_;
    if (done) scope_.After(absl::ZeroDuration(), [done, status] { done(status); });
    return;
  }
  queue_.push_back(Pending{type, std::move(payload), sync, std::move(done)});
  // While a batch waits to be sent again, its retry takes the queue along.
  if (in_flight_.empty()) {
    ScheduleFlushLocked(sync ? absl::ZeroDuration() : options_.unsynced_delay);
  }
}

absl::Status EtcdDecisionLog::health() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

uint64_t EtcdDecisionLog::transactions_written() const {
  absl::MutexLock lock(&mu_);
  return transactions_written_;
}

void EtcdDecisionLog::ScheduleFlushLocked(absl::Duration delay) {
  if (flush_scheduled_ && delay > absl::ZeroDuration()) return;
  flush_scheduled_ = true;
  scope_.After(delay, [this] { Flush(); });
}

absl::Status EtcdDecisionLog::BuildBatch(std::vector<Pending>& records, Batch* batch) {
  const absl::Time now = scope_.Now();
  std::map<std::string, std::string> puts;  // one write per key, the last wins
  std::vector<std::string> prefix_deletes;
  std::vector<std::string> deletes;
  // What this batch has done to each txid so far (nullopt: ended).
  std::map<std::string, std::optional<Keys>> staged;
  std::set<std::pair<uint64_t, uint64_t>> dirty;
  for (const Pending& record : records) {
    switch (record.type) {
      case kRecordCommit: {
        absl::StatusOr<LogCommit> commit = DecodeCommit(record.payload);
        if (!commit.ok()) return commit.status();
        puts[TxKey(commit->txid) + kCommitKey] = record.payload;
        staged[commit->txid] = Keys::kCommit;
        break;
      }
      case kRecordOnePhase: {
        absl::StatusOr<LogOnePhase> one_phase = DecodeOnePhase(record.payload);
        if (!one_phase.ok()) return one_phase.status();
        puts[TxKey(one_phase->txid) + kOnePhaseKey] = record.payload;
        staged[one_phase->txid] = Keys::kOnePhase;
        break;
      }
      case kRecordMarkDone: {
        absl::StatusOr<LogMarkDone> mark = DecodeMarkDone(record.payload);
        if (!mark.ok()) return mark.status();
        puts[absl::StrCat(TxKey(mark->txid), kMarkDir, mark->participant)] = record.payload;
        break;
      }
      case kRecordEnd: {
        absl::StatusOr<LogEnd> end = DecodeEnd(record.payload);
        if (!end.ok()) return end.status();
        std::optional<Keys> keys;
        bool in_etcd = false;
        if (auto it = with_keys_.find(end->txid); it != with_keys_.end()) {
          keys = it->second;
          in_etcd = true;
        }
        if (auto it = staged.find(end->txid); it != staged.end()) keys = it->second;
        if (end->committed || keys == Keys::kCommit) {
          absl::StatusOr<Txid> txid = ParseTxid(end->txid);
          if (txid.ok()) {
            retained_.Add(txid->epoch, txid->sequence, now);
            dirty.insert({txid->epoch, txid->sequence});
          }
        }
        // Writes of this batch to the transaction's keys go unmade; keys
        // from earlier batches go with one prefix delete.
        const std::string prefix = TxKey(end->txid);
        for (auto it = puts.lower_bound(prefix);
             it != puts.end() && absl::StartsWith(it->first, prefix);) {
          it = puts.erase(it);
        }
        if (in_etcd) prefix_deletes.push_back(prefix);
        staged[end->txid] = std::nullopt;
        break;
      }
      case kRecordExpired: {
        absl::StatusOr<ExpiredMark> mark = DecodeExpired(record.payload);
        if (!mark.ok()) return mark.status();
        retained_.ExpireThrough(*mark);
        puts[options_.keys.log + kExpiredKey] = record.payload;
        break;
      }
      case kRecordRetained: {
        absl::StatusOr<OutcomeChunk> chunk = DecodeRetained(record.payload);
        if (!chunk.ok()) return chunk.status();
        if (absl::Status merged = retained_.Merge(*chunk); !merged.ok()) return merged;
        dirty.insert({chunk->epoch, chunk->first_sequence});
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("decision log on etcd: unknown record type ", record.type));
    }
  }
  for (const auto& [epoch, sequence] : dirty) {
    std::optional<OutcomeChunk> chunk = retained_.ChunkOf(epoch, sequence);
    if (!chunk.has_value()) continue;
    puts[ChunkKey(chunk->epoch, chunk->first_sequence)] = EncodeRetained(*chunk);
    batch->chunks_written.push_back({chunk->epoch, chunk->first_sequence});
  }
  // Chunks past the window (or the memory bound) go from etcd too, a few
  // per batch, under etcd's limit on writes per transaction. The current
  // epoch's chunks go only by the memory bound: this log does not know
  // which of its txids are still undecided.
  if (now - last_prune_ >= options_.prune_every) {
    last_prune_ = now;
    const ExpiredMark before = retained_.expired();
    retained_.Prune(now, [this] { return ExpiredMark{options_.ownership.epoch, 0}; });
    const ExpiredMark& after = retained_.expired();
    if (before < after) puts[options_.keys.log + kExpiredKey] = EncodeExpired(after);
  }
  const size_t room = 120 - std::min<size_t>(120, puts.size() + prefix_deletes.size());
  for (const auto& [epoch, first] : written_chunks_) {
    if (deletes.size() >= room) break;
    const ExpiredMark last{epoch, first + RetainedOutcomes::kChunkSequences - 1};
    if (retained_.expired() < last) break;                      // sorted: the rest are newer
    if (retained_.ChunkOf(epoch, first).has_value()) continue;  // kept for a late commit
    const std::string key = ChunkKey(epoch, first);
    puts.erase(key);
    deletes.push_back(key);
    batch->chunks_deleted.push_back({epoch, first});
  }
  for (auto& [key, value] : puts) batch->ops.push_back(TxnOp{TxnOp::Type::kPut, key, value, 0});
  for (auto& key : deletes) batch->ops.push_back(TxnOp{TxnOp::Type::kDelete, key, "", 0});
  for (auto& key : prefix_deletes) {
    batch->ops.push_back(TxnOp{TxnOp::Type::kDeletePrefix, key, "", 0});
  }
  for (auto& [txid, keys] : staged) batch->key_changes.push_back({txid, keys});
  batch->records = std::move(records);
  return absl::OkStatus();
}

void EtcdDecisionLog::FailLocked(const absl::Status& status, std::vector<Pending>* answer) {
  if (failure_.ok()) failure_ = status;
  for (Pending& pending : queue_) answer->push_back(std::move(pending));
  queue_.clear();
}

std::vector<EtcdDecisionLog::Pending> EtcdDecisionLog::TakeRecordsLocked() {
  std::vector<Pending> records;
  if (!in_flight_.empty()) {
    records.swap(in_flight_);
    return records;
  }
  const size_t n = std::min(queue_.size(), options_.max_records_per_txn);
  records.assign(std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.begin() + n));
  queue_.erase(queue_.begin(), queue_.begin() + n);
  return records;
}

void EtcdDecisionLog::Flush() {
  std::vector<Pending> records;
  {
    absl::MutexLock lock(&mu_);
    flush_scheduled_ = false;
    if (!failure_.ok()) return;
    records = TakeRecordsLocked();
  }
  if (records.empty()) return;

  Batch batch;
  absl::Status status = BuildBatch(records, &batch);
  absl::StatusOr<cluster::TxnResult> written =
      status.ok() ? etcd_->Txn(Guard(), batch.ops) : absl::StatusOr<cluster::TxnResult>(status);
  if (!written.ok() && Retryable(written.status())) {
    TXLOG(WARNING) << "decision log: writing " << batch.records.size() << " record(s) to "
                   << etcd_->Describe() << " failed: " << written.status() << "; retrying in "
                   << absl::FormatDuration(backoff_);
    absl::MutexLock lock(&mu_);
    in_flight_ = std::move(batch.records);
    scope_.After(backoff_, [this] { Flush(); });
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    return;
  }
  backoff_ = options_.min_backoff;
  std::vector<Pending> answer = std::move(batch.records);
  absl::Status result;
  {
    absl::MutexLock lock(&mu_);
    if (!written.ok()) {
      result = absl::Status(written.status().code(),
                            absl::StrCat("decision log on ", etcd_->Describe(),
                                         " failed: ", written.status().message()));
      FailLocked(result, &answer);
    } else if (!written->succeeded) {
      result = absl::FailedPreconditionError(absl::StrCat(
          "decision log: etcd refused a write fenced on ", options_.ownership.owner_key,
          " revision ", options_.ownership.fence, " (epoch ", options_.ownership.epoch,
          ") at revision ", written->revision, ": another process owns the space now"));
      FailLocked(result, &answer);
    } else {
      ++transactions_written_;
      if (!queue_.empty()) ScheduleFlushLocked(absl::ZeroDuration());
    }
  }
  if (written.ok() && written->succeeded) {
    for (auto& [txid, keys] : batch.key_changes) {
      if (keys.has_value()) {
        with_keys_[txid] = *keys;
      } else {
        with_keys_.erase(txid);
      }
    }
    for (const auto& chunk : batch.chunks_written) written_chunks_.insert(chunk);
    for (const auto& chunk : batch.chunks_deleted) written_chunks_.erase(chunk);
  } else {
    TXLOG(ERROR) << result;
  }
  for (Pending& pending : answer) {
    if (pending.done) pending.done(result);
  }
  if (!result.ok() && on_failure_) on_failure_(result);
}

void EtcdDecisionLog::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  scope_.Close();  // waits for a Flush that is running
  // What is still queued (END records) gets one attempt each, on this thread.
  while (true) {
    std::vector<Pending> records;
    {
      absl::MutexLock lock(&mu_);
      if (!failure_.ok()) return;
      records = TakeRecordsLocked();
    }
    if (records.empty()) return;
    Batch batch;
    absl::Status status = BuildBatch(records, &batch);
    absl::StatusOr<cluster::TxnResult> written =
        status.ok() ? etcd_->Txn(Guard(), batch.ops) : absl::StatusOr<cluster::TxnResult>(status);
    if (written.ok() && !written->succeeded) {
      written = absl::FailedPreconditionError("another process owns the space now");
    }
    if (!written.ok()) {
      TXLOG(WARNING) << "decision log: " << batch.records.size()
                     << " record(s) not written at close: " << written.status()
                     << " (their transactions are driven again by the next owner)";
      absl::MutexLock lock(&mu_);
      failure_ = written.status();
      return;
    }
    for (Pending& pending : batch.records) {
      if (pending.done) pending.done(absl::OkStatus());
    }
  }
}

}  // namespace txcoord::coordinator::ha
