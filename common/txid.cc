#include "common/txid.h"

#include <cstdint>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace txcoord {

std::string Txid::ToString() const { return absl::StrCat(cluster, ".", epoch, ".", sequence); }

bool IsValidName(absl::string_view name, bool allow_dot) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || (allow_dot && (c == '.' || c == ':'));
    if (!ok) return false;
  }
  return true;
}

bool IsValidEndpoint(absl::string_view endpoint) {
  if (endpoint.size() > 256) return false;
  const size_t colon = endpoint.rfind(':');
  if (colon == absl::string_view::npos) return false;
  const absl::string_view host = endpoint.substr(0, colon);
  const absl::string_view port = endpoint.substr(colon + 1);
  uint32_t port_number = 0;
  if (port.empty() || port.size() > 5 || !absl::SimpleAtoi(port, &port_number) ||
      port_number == 0 || port_number > 65535 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return false;
  }
  if (host.size() >= 3 && host.front() == '[' && host.back() == ']') {
    const absl::string_view ip = host.substr(1, host.size() - 2);
    return ip.find_first_not_of("0123456789abcdefABCDEF:.") == absl::string_view::npos;
  }
  if (host.empty()) return false;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Digits only, no sign, no leading zero: the one spelling ToString writes,
// so that one txid has one text (the coordinator and the agents key their
// state by it, and by its numbers).
bool ParseCanonicalNumber(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.find_first_not_of("0123456789") != absl::string_view::npos) return false;
  if (text.size() > 1 && text.front() == '0') return false;
  return absl::SimpleAtoi(text, value);
}

}  // namespace

absl::StatusOr<Txid> ParseTxid(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("txid is empty");
  if (text.size() > kMaxTxidBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("txid is ", text.size(), " bytes; at most ", kMaxTxidBytes));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  Txid txid;
  if (parts.size() != 3 || !IsValidName(parts[0], /*allow_dot=*/false) ||
      !ParseCanonicalNumber(parts[1], &txid.epoch) ||
      !ParseCanonicalNumber(parts[2], &txid.sequence)) {
    // Never echo arbitrary bytes back at length.
    return absl::InvalidArgumentError(absl::StrCat("malformed txid \"",
                                                   absl::CHexEscape(text.substr(0, 64)),
                                                   "\": expected <cluster>.<epoch>.<sequence>"));
  }
  txid.cluster = std::string(parts[0]);
  return txid;
}

}  // namespace txcoord
