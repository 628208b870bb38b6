// A small streaming JSON writer for txctl's --json output: objects,
// arrays, strings (escaped per RFC 8259), integers and booleans. Enough for
// machine-readable reports without a JSON library dependency.
//
//   JsonWriter json;
//   json.BeginObject();
//   json.Key("txid").String("c1.3.17");
//   json.Key("branches").BeginArray(); ... json.EndArray();
//   json.EndObject();
//   std::cout << json.str() << "\n";
#ifndef TXCOORD_CLI_JSON_WRITER_H_
#define TXCOORD_CLI_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace txcoord::cli {

// Not thread-safe. Precondition for every call: it makes sense where the
// writer stands (a Key only inside an object, a value after a Key there).
class JsonWriter final {
 public:
  JsonWriter() = default;
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  void Escaped(absl::string_view text);

  std::string out_;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_JSON_WRITER_H_
