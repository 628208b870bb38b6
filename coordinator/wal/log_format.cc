#include "coordinator/wal/log_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/wal/crc32c.h"

namespace txcoord::wal {
namespace {

void PutFixed16(std::string* out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void AppendSegmentHeader(const SegmentHeader& header, std::string* out) {
  const size_t start = out->size();
  PutFixed32(out, kSegmentMagic);
  PutFixed16(out, header.version);
  PutFixed16(out, header.flags);
  PutFixed64(out, header.sequence);
  PutFixed64(out, header.checkpoint_bytes);
  PutFixed32(out, crc32c::Mask(crc32c::Value(absl::string_view(*out).substr(start))));
}

absl::Status ParseSegmentHeader(absl::string_view data, SegmentHeader* header) {
  if (data.size() < kSegmentHeaderBytes) {
    return absl::DataLossError(absl::StrCat("short segment header (", data.size(), " of ",
                                            kSegmentHeaderBytes, " bytes)"));
  }
  const char* p = data.data();
  if (GetFixed(p, 4) != kSegmentMagic) return absl::DataLossError("bad segment magic");
  const uint32_t stored = static_cast<uint32_t>(GetFixed(p + 24, 4));
  if (crc32c::Unmask(stored) != crc32c::Value(data.substr(0, 24))) {
    return absl::DataLossError("segment header checksum mismatch");
  }
  header->version = static_cast<uint16_t>(GetFixed(p + 4, 2));
  header->flags = static_cast<uint16_t>(GetFixed(p + 6, 2));
  header->sequence = GetFixed(p + 8, 8);
  header->checkpoint_bytes = GetFixed(p + 16, 8);
  if (header->version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("segment format version ", header->version,
                                                      " (this build reads ", kFormatVersion, ")"));
  }
  return absl::OkStatus();
}

void AppendRecord(uint8_t type, absl::string_view payload, std::string* out) {
  const size_t start = out->size();
  PutFixed32(out, 0);  // checksum, filled in below once the bytes exist
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(payload.data(), payload.size());
  const uint32_t crc =
      crc32c::Mask(crc32c::Extend(0, out->data() + start + 4, out->size() - start - 4));
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>(crc >> (8 * i));
}

std::string SegmentFileName(uint64_t sequence) {
  return absl::StrFormat("%016x%s", sequence, kSegmentSuffix);
}

bool ParseSegmentFileName(absl::string_view name, uint64_t* sequence) {
  if (name.size() != 16 + kSegmentSuffix.size()) return false;
  if (name.substr(16) != kSegmentSuffix) return false;
  uint64_t v = 0;
  for (char c : name.substr(0, 16)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  if (v == 0) return false;
  *sequence = v;
  return true;
}

}  // namespace txcoord::wal
