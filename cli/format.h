// Text formatting shared by txctl's commands: aligned tables, ages,
// timestamps, and the names of protocol enums as operators read them.
#ifndef TXCOORD_CLI_FORMAT_H_
#define TXCOORD_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "txcoord/v1/admin.pb.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::cli {

// Columns padded to their widest cell, two spaces apart; the last column is
// not padded. Not thread-safe.
class Table final {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  size_t rows() const { return rows_.size(); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "850ms", "12.3s", "5m03s", "2h10m", "3d04h".
std::string FormatAge(absl::Duration age);
// Age since `unix_ms` ("-" for 0).
std::string Ago(int64_t unix_ms, absl::Time now);
// "2026-01-15T10:04:05Z" ("-" for 0).
std::string Timestamp(int64_t unix_ms);
// At most `max` bytes, with "..." when cut; newlines become spaces.
std::string Truncate(const std::string& text, size_t max);
// "-" for an empty string.
std::string OrDash(const std::string& text);

// "COMMITTING", "YES", "SIGNED", "COMMITTED" (prefixes dropped).
std::string StateName(v1::TxState state);
std::string VoteName(v1::Vote vote);
std::string InDoubtVoteName(v1::InDoubtVote vote);
std::string OutcomeName(v1::Outcome outcome);

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_FORMAT_H_
