#include "coordinator/records.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/check.h"

namespace txcoord::coordinator {
namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, absl::string_view s) {
  // A longer string would be framed with a wrapped length and read back as
  // garbage; the WAL's record limit is far below this.
  TXCOORD_CHECK(s.size() <= UINT32_MAX) << "a record string of " << s.size() << " bytes";
  PutVarint(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

bool GetVarint64(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetVarint(absl::string_view* in, uint32_t* v) {
  uint64_t wide = 0;
  if (!GetVarint64(in, &wide) || wide > UINT32_MAX) return false;
  *v = static_cast<uint32_t>(wide);
  return true;
}

constexpr uint8_t kEndCommitted = 1;

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
  // What recovery reads back must be what was logged (the token is not).
  const auto decodes_to_itself = [&] {
    absl::StatusOr<LogCommit> back = DecodeCommit(out);
    return back.ok() && back->txid == commit.txid && back->branches == commit.branches;
  };
  TXCOORD_DCHECK(decodes_to_itself())
      << "txid=" << commit.txid << " COMMIT does not decode to itself";
  return out;
}

const char* RecordTypeName(uint8_t type) {
  switch (type) {
    case kRecordCommit:
      return "COMMIT";
    case kRecordEnd:
      return "END";
    case kRecordMarkDone:
      return "MARK_DONE";
    case kRecordOnePhase:
      return "ONE_PHASE";
    case kRecordRetained:
      return "RETAINED";
    case kRecordExpired:
      return "EXPIRED";
  }
  return "?";
}

std::string EncodeEnd(const LogEnd& end) {
  std::string out;
  PutString(&out, end.txid);
  if (end.committed) out.push_back(static_cast<char>(kEndCommitted));
  const auto decodes_to_itself = [&] {
    absl::StatusOr<LogEnd> back = DecodeEnd(out);
    return back.ok() && back->txid == end.txid && back->committed == end.committed;
  };
  TXCOORD_DCHECK(decodes_to_itself()) << "txid=" << end.txid << " END does not decode to itself";
  return out;
}

std::string EncodeOnePhase(const LogOnePhase& one_phase) {
  std::string out;
  PutString(&out, one_phase.txid);
  PutString(&out, one_phase.branch.participant);
  PutString(&out, one_phase.branch.endpoint);
  PutVarint(&out, one_phase.branch.token);
  const auto decodes_to_itself = [&] {
    absl::StatusOr<LogOnePhase> back = DecodeOnePhase(out);
    return back.ok() && back->txid == one_phase.txid && back->branch == one_phase.branch &&
           back->branch.token == one_phase.branch.token;
  };
  TXCOORD_DCHECK(decodes_to_itself())
      << "txid=" << one_phase.txid << " ONE_PHASE does not decode to itself";
  return out;
}

std::string EncodeRetained(const OutcomeChunk& chunk) {
  std::string out;
  PutVarint(&out, chunk.epoch);
  PutVarint(&out, chunk.first_sequence);
  PutVarint(&out, static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixMillis(chunk.newest))));
  PutString(&out, chunk.bitmap);
  return out;
}

std::string EncodeExpired(const ExpiredMark& mark) {
  std::string out;
  PutVarint(&out, mark.epoch);
  PutVarint(&out, mark.sequence);
  return out;
}

std::string EncodeMarkDone(const LogMarkDone& mark) {
  std::string out;
  PutString(&out, mark.txid);
  PutString(&out, mark.participant);
  PutString(&out, mark.note);
  const auto decodes_to_itself = [&] {
    absl::StatusOr<LogMarkDone> back = DecodeMarkDone(out);
    return back.ok() && back->txid == mark.txid && back->participant == mark.participant &&
           back->note == mark.note;
  };
  TXCOORD_DCHECK(decodes_to_itself())
      << "txid=" << mark.txid << " MARK_DONE does not decode to itself";
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
      return absl::DataLossError(
          absl::StrCat("malformed COMMIT record: branch ", i, " of ", count));
    }
    commit.branches.push_back(std::move(b));
  }
  if (!payload.empty()) return absl::DataLossError("COMMIT record has trailing bytes");
  return commit;
}

absl::StatusOr<LogEnd> DecodeEnd(absl::string_view payload) {
  LogEnd end;
  if (!GetString(&payload, &end.txid)) return absl::DataLossError("malformed END record");
  if (payload.empty()) return end;
  if (payload.size() != 1 || static_cast<uint8_t>(payload[0]) != kEndCommitted) {
    return absl::DataLossError("END record has unknown flags or trailing bytes");
  }
  end.committed = true;
  return end;
}

absl::StatusOr<LogOnePhase> DecodeOnePhase(absl::string_view payload) {
  LogOnePhase one_phase;
  if (!GetString(&payload, &one_phase.txid) ||
      !GetString(&payload, &one_phase.branch.participant) ||
      !GetString(&payload, &one_phase.branch.endpoint) ||
      !GetVarint64(&payload, &one_phase.branch.token) || !payload.empty()) {
    return absl::DataLossError("malformed ONE_PHASE record");
  }
  return one_phase;
}

absl::StatusOr<OutcomeChunk> DecodeRetained(absl::string_view payload) {
  OutcomeChunk chunk;
  uint64_t newest_ms = 0;
  if (!GetVarint64(&payload, &chunk.epoch) || !GetVarint64(&payload, &chunk.first_sequence) ||
      !GetVarint64(&payload, &newest_ms) || !GetString(&payload, &chunk.bitmap) ||
      !payload.empty() || newest_ms > static_cast<uint64_t>(INT64_MAX)) {
    return absl::DataLossError("malformed RETAINED record");
  }
  chunk.newest = absl::FromUnixMillis(static_cast<int64_t>(newest_ms));
  return chunk;
}

absl::StatusOr<ExpiredMark> DecodeExpired(absl::string_view payload) {
  ExpiredMark mark;
  if (!GetVarint64(&payload, &mark.epoch) || !GetVarint64(&payload, &mark.sequence) ||
      !payload.empty()) {
    return absl::DataLossError("malformed EXPIRED record");
  }
  return mark;
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
