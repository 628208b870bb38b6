// The coordinator's log records: what each WAL record type means and how
// its payload is encoded. COMMIT{txid, branches} is forced before a client
// hears COMMITTED; MARK_DONE{txid, participant, note} is forced before an
// operator's mark-done is answered; END{txid} is never forced. See
// docs/wal-format.md.
#ifndef TXCOORD_COORDINATOR_RECORDS_H_
#define TXCOORD_COORDINATOR_RECORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/actions.h"

namespace txcoord::coordinator {

inline constexpr uint8_t kRecordCommit = 1;
inline constexpr uint8_t kRecordEnd = 2;
inline constexpr uint8_t kRecordMarkDone = 3;

// Payloads are sequences of length-prefixed strings (varint32 length, then
// bytes): COMMIT = txid, count, (participant, endpoint) x count; END = txid;
// MARK_DONE = txid, participant, note (possibly empty).
std::string EncodeCommit(const LogCommit& commit);
std::string EncodeEnd(const std::string& txid);
std::string EncodeMarkDone(const LogMarkDone& mark);
// DATA_LOSS naming the problem if the payload is malformed.
absl::StatusOr<LogCommit> DecodeCommit(absl::string_view payload);
absl::StatusOr<std::string> DecodeEnd(absl::string_view payload);
absl::StatusOr<LogMarkDone> DecodeMarkDone(absl::string_view payload);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_RECORDS_H_
