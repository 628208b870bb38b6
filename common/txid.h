// Global transaction ids: "<cluster>.<epoch>.<sequence>". The cluster names
// the coordinator that owns the transaction; the epoch grows on every start
// of that coordinator, so ids never repeat across restarts.
#ifndef TXCOORD_COMMON_TXID_H_
#define TXCOORD_COMMON_TXID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord {

inline constexpr size_t kMaxTxidBytes = 128;
inline constexpr size_t kMaxNameBytes = 128;

struct Txid {
  std::string cluster;
  uint64_t epoch = 0;
  uint64_t sequence = 0;

  std::string ToString() const;
};

// Parses a txid; INVALID_ARGUMENT naming the problem if malformed.
absl::StatusOr<Txid> ParseTxid(absl::string_view text);

// True if `name` is 1..kMaxNameBytes of [A-Za-z0-9_.:-] (participant names)
// or, with allow_dot=false, of [A-Za-z0-9_-] (cluster ids).
bool IsValidName(absl::string_view name, bool allow_dot = true);

// True if `endpoint` is "host:port" in at most 256 bytes: a host of
// [A-Za-z0-9_.-] or a bracketed IPv6 address ("[::1]"), and a port of 1 to
// 65535. Endpoints are stored in the coordinator's log and dialled later,
// so nothing else is let in.
bool IsValidEndpoint(absl::string_view endpoint);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_TXID_H_
