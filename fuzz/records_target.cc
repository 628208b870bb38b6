// Fuzzing the coordinator's record decoders (coordinator/records.h) and
// txid parsing (common/txid.h): arbitrary bytes get a status, and whatever
// decodes survives a round trip unchanged.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/txid.h"
#include "coordinator/records.h"
#include "fuzz/fuzz_targets.h"

namespace txcoord::fuzz {

int FuzzRecords(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<coordinator::LogCommit> commit = coordinator::DecodeCommit(bytes);
  if (commit.ok()) {
    absl::StatusOr<coordinator::LogCommit> again =
        coordinator::DecodeCommit(coordinator::EncodeCommit(*commit));
    Require(again.ok() && again->txid == commit->txid && again->branches == commit->branches,
            "COMMIT record changes across encode/decode");
  } else {
    Require(absl::IsDataLoss(commit.status()),
            "DecodeCommit fails with a code other than DATA_LOSS");
  }

  absl::StatusOr<coordinator::LogEnd> end = coordinator::DecodeEnd(bytes);
  if (end.ok()) {
    absl::StatusOr<coordinator::LogEnd> again =
        coordinator::DecodeEnd(coordinator::EncodeEnd(*end));
    Require(again.ok() && again->txid == end->txid && again->committed == end->committed,
            "END record changes across encode/decode");
  }

  absl::StatusOr<coordinator::LogOnePhase> one_phase = coordinator::DecodeOnePhase(bytes);
  if (one_phase.ok()) {
    absl::StatusOr<coordinator::LogOnePhase> again =
        coordinator::DecodeOnePhase(coordinator::EncodeOnePhase(*one_phase));
    Require(again.ok() && again->txid == one_phase->txid && again->branch == one_phase->branch &&
                again->branch.token == one_phase->branch.token,
            "ONE_PHASE record changes across encode/decode");
  }

  absl::StatusOr<coordinator::OutcomeChunk> chunk = coordinator::DecodeRetained(bytes);
  if (chunk.ok()) {
    absl::StatusOr<coordinator::OutcomeChunk> again =
        coordinator::DecodeRetained(coordinator::EncodeRetained(*chunk));
    Require(again.ok() && again->epoch == chunk->epoch &&
                again->first_sequence == chunk->first_sequence && again->bitmap == chunk->bitmap,
            "RETAINED record changes across encode/decode");
    // Whatever a damaged chunk holds, merging it must not crash.
    coordinator::RetainedOutcomes outcomes;
    (void)outcomes.Merge(*chunk);
  }

  absl::StatusOr<coordinator::ExpiredMark> expired = coordinator::DecodeExpired(bytes);
  if (expired.ok()) {
    absl::StatusOr<coordinator::ExpiredMark> again =
        coordinator::DecodeExpired(coordinator::EncodeExpired(*expired));
    Require(again.ok() && again->epoch == expired->epoch && again->sequence == expired->sequence,
            "EXPIRED record changes across encode/decode");
  }

  absl::StatusOr<coordinator::LogMarkDone> mark = coordinator::DecodeMarkDone(bytes);
  if (mark.ok()) {
    absl::StatusOr<coordinator::LogMarkDone> again =
        coordinator::DecodeMarkDone(coordinator::EncodeMarkDone(*mark));
    Require(again.ok() && again->txid == mark->txid && again->participant == mark->participant &&
                again->note == mark->note,
            "MARK_DONE record changes across encode/decode");
  } else {
    Require(absl::IsDataLoss(mark.status()),
            "DecodeMarkDone fails with a code other than DATA_LOSS");
  }

  absl::StatusOr<Txid> txid = ParseTxid(bytes);
  if (txid.ok()) {
    const std::string text = txid->ToString();
    absl::StatusOr<Txid> again = ParseTxid(text);
    Require(again.ok() && again->cluster == txid->cluster && again->epoch == txid->epoch &&
                again->sequence == txid->sequence,
            absl::StrCat("txid changes across parse/print: ", text));
    Require(IsValidName(txid->cluster, /*allow_dot=*/false), "parsed cluster id is not valid");
  } else {
    Require(absl::IsInvalidArgument(txid.status()),
            "ParseTxid fails with a code other than INVALID_ARGUMENT");
    // The message quotes at most 64 input bytes, escaped.
    Require(txid.status().message().size() < 400, "ParseTxid echoes too much input");
  }
  IsValidName(bytes);
  IsValidName(bytes, /*allow_dot=*/false);
  return 0;
}

}  // namespace txcoord::fuzz
