#include "cli/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace txcoord::cli {
namespace {

std::string WithoutPrefix(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&widths](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto render = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      if (i + 1 == widths.size()) {
        line += cell;
      } else {
        absl::StrAppend(&line, cell, std::string(widths[i] - cell.size() + 2, ' '));
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  };
  render(headers_);
  for (const auto& row : rows_) render(row);
  return out;
}

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  const int64_t ms = absl::ToInt64Milliseconds(age);
  if (ms < 1000) return absl::StrCat(ms, "ms");
  if (ms < 60'000) return absl::StrFormat("%.1fs", ms / 1000.0);
  const int64_t s = ms / 1000;
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, (s % 86400) / 3600);
}

std::string Ago(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "-";
  return FormatAge(now - absl::FromUnixMillis(unix_ms));
}

std::string Timestamp(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string Truncate(const std::string& text, size_t max) {
  std::string flat = absl::StrReplaceAll(text, {{"\n", " "}, {"\r", " "}});
  if (flat.size() <= max) return flat;
  return flat.substr(0, max > 3 ? max - 3 : 0) + "...";
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

std::string StateName(v1::TxState state) {
  return WithoutPrefix(v1::TxState_Name(state), "TX_STATE_");
}

std::string VoteName(v1::Vote vote) {
  if (vote == v1::VOTE_UNSPECIFIED) return "-";
  return WithoutPrefix(v1::Vote_Name(vote), "VOTE_");
}

std::string InDoubtVoteName(v1::InDoubtVote vote) {
  if (vote == v1::IN_DOUBT_VOTE_UNSPECIFIED) return "-";
  return WithoutPrefix(v1::InDoubtVote_Name(vote), "IN_DOUBT_VOTE_");
}

std::string OutcomeName(v1::Outcome outcome) {
  if (outcome == v1::OUTCOME_UNSPECIFIED) return "-";
  return WithoutPrefix(v1::Outcome_Name(outcome), "OUTCOME_");
}

}  // namespace txcoord::cli
