// A typed SQL value as the agent and its clients exchange it: NULL, 64-bit
// integer, double, UTF-8 text or blob. Plain data; copyable.
#ifndef TXCOORD_COMMON_SQL_VALUE_H_
#define TXCOORD_COMMON_SQL_VALUE_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace txcoord {

struct Blob {
  std::string bytes;
  bool operator==(const Blob& other) const { return bytes == other.bytes; }
};

// std::monostate is SQL NULL.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string, Blob>;

// One SQL statement with positional parameters (?1, ?2, ...).
struct SqlStatement {
  std::string sql;
  std::vector<SqlValue> params;
};

// What one statement returned.
struct SqlResult {
  std::vector<std::string> columns;
  std::vector<std::vector<SqlValue>> rows;
  int64_t changes = 0;
  int64_t last_insert_rowid = 0;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SQL_VALUE_H_
