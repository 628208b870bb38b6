#include "coordinator/recovery_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/txid.h"
#include "coordinator/records.h"

namespace txcoord::coordinator {

RecoveryState::RecoveryState(const RetentionOptions& retention, absl::Time now)
    : now_(now), outcomes_(retention) {}

void RecoveryState::Retain(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  if (parsed.ok()) outcomes_.Add(parsed->epoch, parsed->sequence, now_);
}

absl::Status RecoveryState::Apply(uint8_t type, absl::string_view payload) {
  switch (type) {
    case kRecordCommit: {
      absl::StatusOr<LogCommit> commit = DecodeCommit(payload);
      if (!commit.ok()) return commit.status();
      std::string txid = commit->txid;
      Retain(txid);
      unfinished_[txid] = *std::move(commit);
      return absl::OkStatus();
    }
    case kRecordEnd: {
      absl::StatusOr<LogEnd> end = DecodeEnd(payload);
      if (!end.ok()) return end.status();
      if (end->committed) Retain(end->txid);
      unfinished_.erase(end->txid);
      one_phase_.erase(end->txid);
      marks_.erase(end->txid);
      return absl::OkStatus();
    }
    case kRecordOnePhase: {
      absl::StatusOr<LogOnePhase> one_phase = DecodeOnePhase(payload);
      if (!one_phase.ok()) return one_phase.status();
      std::string txid = one_phase->txid;
      one_phase_[txid] = *std::move(one_phase);
      return absl::OkStatus();
    }
    case kRecordMarkDone: {
      absl::StatusOr<LogMarkDone> mark = DecodeMarkDone(payload);
      if (!mark.ok()) return mark.status();
      // Only a mark on a COMMIT still open counts: one after the END (or
      // with its COMMIT in a segment a checkpoint superseded) has no effect.
      auto commit = unfinished_.find(mark->txid);
      if (commit == unfinished_.end()) return absl::OkStatus();
      const auto& branches = commit->second.branches;
      const bool has_branch =
          std::any_of(branches.begin(), branches.end(),
                      [&](const BranchRef& b) { return b.participant == mark->participant; });
      if (!has_branch) return absl::OkStatus();
      std::vector<LogMarkDone>& marks = marks_[mark->txid];
      const bool repeated = std::any_of(marks.begin(), marks.end(), [&](const LogMarkDone& m) {
        return m.participant == mark->participant;
      });
      if (!repeated) marks.push_back(*std::move(mark));
      return absl::OkStatus();
    }
    case kRecordRetained: {
      absl::StatusOr<OutcomeChunk> chunk = DecodeRetained(payload);
      if (!chunk.ok()) return chunk.status();
      if (absl::Status merged = outcomes_.Merge(*chunk); !merged.ok()) {
        return absl::DataLossError(absl::StrCat("bad RETAINED record: ", merged.message()));
      }
      return absl::OkStatus();
    }
    case kRecordExpired: {
      absl::StatusOr<ExpiredMark> mark = DecodeExpired(payload);
      if (!mark.ok()) return mark.status();
      outcomes_.ExpireThrough(*mark);
      saw_expired_ = true;
      return absl::OkStatus();
    }
    default:
      return absl::DataLossError(absl::StrCat("unknown log record type ", type));
  }
}

const std::vector<LogMarkDone>& RecoveryState::marks(const std::string& txid) const {
  static const std::vector<LogMarkDone>* const kNone = new std::vector<LogMarkDone>();
  auto it = marks_.find(txid);
  return it == marks_.end() ? *kNone : it->second;
}

}  // namespace txcoord::coordinator
