// The on-disk format of the coordinator WAL, shared by the writer, Open's
// recovery and the offline checker. docs/wal-format.md explains the why.
//
// A segment file "<16 hex digits>.wal" is a segment header then records:
//
//   segment header (28 bytes, little-endian)
//     magic u32 = kSegmentMagic | version u16 | flags u16 | sequence u64 |
//     checkpoint_bytes u64 | masked crc32c u32 of the 24 bytes before it
//   record (9-byte header + payload)
//     masked crc32c u32 of everything after it | length u32 | type u8 |
//     payload[length]
//
// A record never spans segments; payloads are at most kMaxPayloadBytes.
#ifndef TXCOORD_COORDINATOR_WAL_LOG_FORMAT_H_
#define TXCOORD_COORDINATOR_WAL_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace txcoord::wal {

inline constexpr uint32_t kSegmentMagic = 0x4c415754;  // "TWAL" on disk
inline constexpr uint16_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 28;
inline constexpr size_t kRecordHeaderBytes = 9;

// Segment header flag: no older segment is needed to replay the log from
// this one, because it is the first segment or starts with a checkpoint.
inline constexpr uint16_t kFlagBase = 1;

// Record types: 0 is never valid (a run of zeros is a torn tail, not a
// record); users own 1..127; 128..255 are reserved for the log itself.
inline constexpr uint8_t kMinUserType = 1;
inline constexpr uint8_t kMaxUserType = 127;

inline constexpr absl::string_view kSegmentSuffix = ".wal";
inline constexpr absl::string_view kTmpSuffix = ".tmp";
inline constexpr absl::string_view kBrokenSuffix = ".broken";

struct SegmentHeader {
  uint16_t version = kFormatVersion;
  uint16_t flags = 0;
  uint64_t sequence = 0;
  // Bytes of checkpoint records right after the header. They were synced
  // before the file got its name, so a bad byte among them is corruption,
  // never a torn write.
  uint64_t checkpoint_bytes = 0;
};

void AppendSegmentHeader(const SegmentHeader& header, std::string* out);

// Parses the first kSegmentHeaderBytes of `data`. DATA_LOSS says why a header
// is bad (short, bad magic, bad crc); FAILED_PRECONDITION means a valid header
// of a format version this build cannot read.
absl::Status ParseSegmentHeader(absl::string_view data, SegmentHeader* header);

// Appends one framed record. Precondition: payload.size() <= kMaxPayloadBytes.
void AppendRecord(uint8_t type, absl::string_view payload, std::string* out);

// "0000000000000001.wal": fixed width, so names sort like sequences.
std::string SegmentFileName(uint64_t sequence);
// True for exactly the names SegmentFileName makes (sequence >= 1).
bool ParseSegmentFileName(absl::string_view name, uint64_t* sequence);

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_LOG_FORMAT_H_
