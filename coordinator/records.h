// The coordinator's log records: what each WAL record type means and how
// its payload is encoded. COMMIT{txid, branches} is forced before a client
// hears COMMITTED; ONE_PHASE{txid, branch} is forced before the only branch
// is asked to decide; MARK_DONE{txid, participant, note} is forced before an
// operator's mark-done is answered; END{txid[, committed]} is never forced.
// RETAINED and EXPIRED carry the retained outcomes (retained_outcomes.h)
// through checkpoints and restarts. See docs/wal-format.md.
#ifndef TXCOORD_COORDINATOR_RECORDS_H_
#define TXCOORD_COORDINATOR_RECORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/actions.h"
#include "coordinator/retained_outcomes.h"

namespace txcoord::coordinator {

inline constexpr uint8_t kRecordCommit = 1;
inline constexpr uint8_t kRecordEnd = 2;
inline constexpr uint8_t kRecordMarkDone = 3;
inline constexpr uint8_t kRecordOnePhase = 4;
inline constexpr uint8_t kRecordRetained = 5;
inline constexpr uint8_t kRecordExpired = 6;

// A record as the engine hands it to a log.
struct EncodedRecord {
  uint8_t type = 0;
  std::string payload;
};

// Names a record type for tools ("COMMIT", ...); "?" for an unknown one.
const char* RecordTypeName(uint8_t type);

// Payloads are sequences of length-prefixed strings (varint32 length, then
// bytes) and varints: COMMIT = txid, count, (participant, endpoint) x count;
// END = txid, then one flags byte (1: committed) only for a transaction
// that committed without a COMMIT record (one-phase, read-only); MARK_DONE
// = txid, participant, note (possibly empty); ONE_PHASE = txid,
// participant, endpoint, token (varint64); RETAINED = epoch, first
// sequence, newest decision in Unix ms (varint64s), bitmap; EXPIRED =
// epoch, sequence (varint64s).
std::string EncodeCommit(const LogCommit& commit);
std::string EncodeEnd(const LogEnd& end);
std::string EncodeMarkDone(const LogMarkDone& mark);
std::string EncodeOnePhase(const LogOnePhase& one_phase);
std::string EncodeRetained(const OutcomeChunk& chunk);
std::string EncodeExpired(const ExpiredMark& mark);
// DATA_LOSS naming the problem if the payload is malformed.
absl::StatusOr<LogCommit> DecodeCommit(absl::string_view payload);
absl::StatusOr<LogEnd> DecodeEnd(absl::string_view payload);
absl::StatusOr<LogMarkDone> DecodeMarkDone(absl::string_view payload);
absl::StatusOr<LogOnePhase> DecodeOnePhase(absl::string_view payload);
absl::StatusOr<OutcomeChunk> DecodeRetained(absl::string_view payload);
absl::StatusOr<ExpiredMark> DecodeExpired(absl::string_view payload);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_RECORDS_H_
