// Checks, ids and encoding of transactional messages (see outbox.h).
#include "participant/outbox.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"

namespace txcoord::participant {
namespace {

bool IsTokenChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", why));
}

absl::Status CheckTopic(absl::string_view field, absl::string_view topic) {
  if (topic.empty()) return Invalid(field, "is empty: a message needs a topic");
  if (topic.size() > kMaxTopicBytes) {
    return Invalid(field, absl::StrCat("is ", topic.size(), " bytes; at most ", kMaxTopicBytes));
  }
  // A subject of plain tokens: no wildcards (a publish must name one
  // subject) and no '$' (the broker's own API lives under $JS, $SYS).
  for (absl::string_view token : absl::StrSplit(topic, '.')) {
    if (token.empty()) {
      return Invalid(field, "has an empty token (leading, trailing or double '.')");
    }
    for (char c : token) {
      if (!IsTokenChar(c)) {
        return Invalid(field, absl::StrCat("has the character ", absl::CEscape(std::string(1, c)),
                                           ": a topic is tokens of [A-Za-z0-9_-] joined by '.'"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckHeader(absl::string_view field, absl::string_view name, absl::string_view value) {
  if (name.empty() || name.size() > kMaxHeaderNameBytes) {
    return Invalid(field, absl::StrCat("name must be 1 to ", kMaxHeaderNameBytes, " bytes"));
  }
  for (char c : name) {
    if (!IsTokenChar(c)) return Invalid(field, "name may hold only [A-Za-z0-9_-]");
  }
  if (absl::StartsWithIgnoreCase(name, "Nats-") || absl::StartsWithIgnoreCase(name, "Txcoord-")) {
    return Invalid(field, absl::StrCat("name ", name,
                                       " is reserved (Nats-* and Txcoord-* are set by the relay)"));
  }
  if (value.size() > kMaxHeaderValueBytes) {
    return Invalid(
        field, absl::StrCat("value is ", value.size(), " bytes; at most ", kMaxHeaderValueBytes));
  }
  if (absl::Status utf8 = CheckUtf8(absl::StrCat(field, " value"), value); !utf8.ok()) return utf8;
  if (absl::StrContains(value, '\r') || absl::StrContains(value, '\n')) {
    return Invalid(field, "value may not hold CR or LF");
  }
  return absl::OkStatus();
}

void PutLength(std::string& out, uint64_t n) {
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
}

void PutBytes(std::string& out, absl::string_view bytes) {
  PutLength(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

// Reads what PutLength and PutBytes wrote; false at a malformed or short
// input.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool Length(uint64_t& n) {
    n = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return false;
      const auto byte = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      n |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  bool Bytes(std::string& out) {
    uint64_t n = 0;
    if (!Length(n) || n > in_.size()) return false;
    out.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  absl::string_view in_;
};

bool ReadHeaders(Reader& reader, std::vector<std::pair<std::string, std::string>>& headers) {
  uint64_t count = 0;
  if (!reader.Length(count) || count > kMaxHeaders) return false;
  headers.resize(count);
  for (auto& [name, value] : headers) {
    if (!reader.Bytes(name) || !reader.Bytes(value)) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckOutboxMessage(absl::string_view field, const OutboxMessage& message,
                                const OutboxLimits& limits) {
  if (absl::Status s = CheckTopic(absl::StrCat(field, ".topic"), message.topic); !s.ok()) return s;
  if (message.key.size() > kMaxKeyBytes) {
    return Invalid(absl::StrCat(field, ".key"),
                   absl::StrCat("is ", message.key.size(), " bytes; at most ", kMaxKeyBytes));
  }
  if (absl::Status s = CheckUtf8(absl::StrCat(field, ".key"), message.key); !s.ok()) return s;
  if (message.payload.size() > limits.max_payload) {
    return Invalid(absl::StrCat(field, ".payload"),
                   absl::StrCat("is ", message.payload.size(), " bytes; at most ",
                                limits.max_payload, " (the agent's --outbox_max_payload)"));
  }
  if (message.headers.size() > kMaxHeaders) {
    return Invalid(absl::StrCat(field, ".headers"),
                   absl::StrCat("has ", message.headers.size(), " entries; at most ", kMaxHeaders));
  }
  for (size_t i = 0; i < message.headers.size(); ++i) {
    const auto& [name, value] = message.headers[i];
    absl::Status s = CheckHeader(absl::StrCat(field, ".headers[", i, "]"), name, value);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string BranchMessageId(absl::string_view txid, absl::string_view participant, size_t index) {
  return absl::StrCat(txid, "/", participant, "/", index);
}

std::string EncodeHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  PutLength(out, headers.size());
  for (const auto& [name, value] : headers) {
    PutBytes(out, name);
    PutBytes(out, value);
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> DecodeHeaders(
    absl::string_view encoded) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (encoded.empty()) return headers;
  Reader reader(encoded);
  if (!ReadHeaders(reader, headers) || !reader.done()) {
    return absl::DataLossError("outbox headers are not in the agent's encoding");
  }
  return headers;
}

std::string EncodeMessages(const std::vector<OutboxMessage>& messages) {
  std::string out;
  PutLength(out, messages.size());
  for (const OutboxMessage& message : messages) {
    PutBytes(out, message.topic);
    PutBytes(out, message.key);
    PutBytes(out, message.payload);
    out.append(EncodeHeaders(message.headers));
  }
  return out;
}

absl::StatusOr<std::vector<OutboxMessage>> DecodeMessages(absl::string_view encoded) {
  std::vector<OutboxMessage> messages;
  if (encoded.empty()) return messages;
  Reader reader(encoded);
  uint64_t count = 0;
  bool ok = reader.Length(count) && count <= encoded.size();
  if (ok) messages.resize(count);
  for (size_t i = 0; ok && i < messages.size(); ++i) {
    OutboxMessage& m = messages[i];
    ok = reader.Bytes(m.topic) && reader.Bytes(m.key) && reader.Bytes(m.payload) &&
         ReadHeaders(reader, m.headers);
  }
  if (!ok || !reader.done()) {
    return absl::DataLossError("a prepared branch's messages are not in the agent's encoding");
  }
  return messages;
}

}  // namespace txcoord::participant
