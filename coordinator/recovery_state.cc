// RecoveryState: what the coordinator's log says at startup (COMMIT
// records without END, and the operators' MARK_DONE records on them).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/records.h"
#include "coordinator/runtime.h"

namespace txcoord::coordinator {

absl::Status RecoveryState::Apply(const wal::Record& record) {
  switch (record.type) {
    case kRecordCommit: {
      absl::StatusOr<LogCommit> commit = DecodeCommit(record.payload);
      if (!commit.ok()) return commit.status();
      std::string txid = commit->txid;
      unfinished_[txid] = *std::move(commit);
      return absl::OkStatus();
    }
    case kRecordEnd: {
      absl::StatusOr<std::string> txid = DecodeEnd(record.payload);
      if (!txid.ok()) return txid.status();
      unfinished_.erase(*txid);
      marks_.erase(*txid);
      return absl::OkStatus();
    }
    case kRecordMarkDone: {
      absl::StatusOr<LogMarkDone> mark = DecodeMarkDone(record.payload);
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
    default:
      return absl::DataLossError(absl::StrCat("unknown log record type ", record.type));
  }
}

const std::vector<LogMarkDone>& RecoveryState::marks(const std::string& txid) const {
  static const std::vector<LogMarkDone>* const kNone = new std::vector<LogMarkDone>();
  auto it = marks_.find(txid);
  return it == marks_.end() ? *kNone : it->second;
}

}  // namespace txcoord::coordinator
