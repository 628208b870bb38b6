// CRC32C (Castagnoli polynomial, as in iSCSI, ext4 and leveldb) for framing
// log records and file headers. Portable, table-driven (slicing-by-8); no
// hardware instructions, so results are the same on every machine.
//
//   uint32_t crc = crc32c::Value(data);            // crc32c("123456789") == 0xE3069283
//   uint32_t stored = crc32c::Mask(crc);           // before writing next to data
#ifndef TXCOORD_COORDINATOR_WAL_CRC32C_H_
#define TXCOORD_COORDINATOR_WAL_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace txcoord::crc32c {

// Returns the CRC32C of `prefix` followed by data[0, n): extending the CRC of
// A with B gives the CRC of A+B. Pure function, thread-safe.
uint32_t Extend(uint32_t prefix_crc, const void* data, size_t n);

inline uint32_t Value(absl::string_view data) { return Extend(0, data.data(), data.size()); }

// A CRC stored next to the bytes it covers is masked, because computing the
// CRC of a string that contains embedded CRCs is weak (leveldb's habit).
// Unmask(Mask(x)) == x.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace txcoord::crc32c

#endif  // TXCOORD_COORDINATOR_WAL_CRC32C_H_
