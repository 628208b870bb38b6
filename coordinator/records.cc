#include "coordinator/records.h"

#include "absl/strings/str_cat.h"

namespace txcoord::coordinator {
namespace {

void PutVarint(std::string* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, absl::string_view s) {
  PutVarint(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

bool GetVarint(absl::string_view* in, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetString(absl::string_view* in, std::string* s) {
  uint32_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodeCommit(const LogCommit& commit) {
  std::string out;
  PutString(&out, commit.txid);
  PutVarint(&out, static_cast<uint32_t>(commit.branches.size()));
  for (const BranchRef& b : commit.branches) {
    PutString(&out, b.participant);
    PutString(&out, b.endpoint);
  }
  return out;
}

std::string EncodeEnd(const std::string& txid) {
  std::string out;
  PutString(&out, txid);
  return out;
}

std::string EncodeMarkDone(const LogMarkDone& mark) {
  std::string out;
  PutString(&out, mark.txid);
  PutString(&out, mark.participant);
  PutString(&out, mark.note);
  return out;
}

absl::StatusOr<LogCommit> DecodeCommit(absl::string_view payload) {
  LogCommit commit;
  uint32_t count = 0;
  if (!GetString(&payload, &commit.txid) || !GetVarint(&payload, &count) ||
      count > payload.size()) {
    return absl::DataLossError("malformed COMMIT record header");
  }
  for (uint32_t i = 0; i < count; ++i) {
    BranchRef b;
    if (!GetString(&payload, &b.participant) || !GetString(&payload, &b.endpoint)) {
      return absl::DataLossError(absl::StrCat("malformed COMMIT record: branch ", i, " of ", count));
    }
    commit.branches.push_back(std::move(b));
  }
  if (!payload.empty()) return absl::DataLossError("COMMIT record has trailing bytes");
  return commit;
}

absl::StatusOr<std::string> DecodeEnd(absl::string_view payload) {
  std::string txid;
  if (!GetString(&payload, &txid) || !payload.empty()) {
    return absl::DataLossError("malformed END record");
  }
  return txid;
}

absl::StatusOr<LogMarkDone> DecodeMarkDone(absl::string_view payload) {
  LogMarkDone mark;
  if (!GetString(&payload, &mark.txid) || !GetString(&payload, &mark.participant) ||
      !GetString(&payload, &mark.note) || !payload.empty()) {
    return absl::DataLossError("malformed MARK_DONE record");
  }
  return mark;
}

}  // namespace txcoord::coordinator
