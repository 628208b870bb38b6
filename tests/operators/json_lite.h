// A small strict JSON parser for tests that read `txctl --json`: it both
// proves the output is valid JSON (RFC 8259: no trailing commas, no bare
// words, escapes checked) and lets a test look fields up.
//
//   absl::StatusOr<JsonValue> doc = ParseJson(out);
//   doc->Get("transactions")->at(0).Get("state")->str == "COMMITTING";
#ifndef TXCOORD_TESTS_OPERATORS_JSON_LITE_H_
#define TXCOORD_TESTS_OPERATORS_JSON_LITE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord::testing {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string str;
  std::vector<JsonValue> items;                            // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject

  // The member `key` of an object; nullptr if absent or not an object.
  const JsonValue* Get(absl::string_view key) const;
  size_t size() const { return type == Type::kArray ? items.size() : members.size(); }
  const JsonValue& at(size_t i) const { return items.at(i); }
};

// The whole of `text` must be one JSON value (surrounding whitespace
// allowed). INVALID_ARGUMENT naming the offset otherwise.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPERATORS_JSON_LITE_H_
