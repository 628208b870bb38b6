// UTF-8 validation for text that arrives in `bytes` proto fields (SQL, TEXT
// parameters, operators' reasons): the wire no longer checks it, so the
// services do, and can name the field and the offending byte.
//
//   if (absl::Status s = CheckUtf8("statements[2].sql", sql); !s.ok()) return s;
//   // INVALID_ARGUMENT "statements[2].sql is not valid UTF-8 (byte 17)"
#ifndef TXCOORD_COMMON_UTF8_H_
#define TXCOORD_COMMON_UTF8_H_

#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace txcoord {

// The offset (from 0) of the first byte of `text` that does not begin a
// well-formed UTF-8 sequence (Unicode Table 3-7), or nullopt if every byte
// does. Overlong forms, surrogates (U+D800..U+DFFF), code points above
// U+10FFFF, stray continuation bytes and sequences cut short are all
// ill-formed; U+0000 is well-formed. Pure function, thread-safe.
[[nodiscard]] std::optional<size_t> FindInvalidUtf8(absl::string_view text);

[[nodiscard]] inline bool IsValidUtf8(absl::string_view text) {
  return !FindInvalidUtf8(text).has_value();
}

// OK if `text` is well-formed UTF-8; otherwise INVALID_ARGUMENT
// "<field> is not valid UTF-8 (byte <offset>)". The text itself is never
// echoed.
absl::Status CheckUtf8(absl::string_view field, absl::string_view text);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_UTF8_H_
