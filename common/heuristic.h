// How an agent says "an operator forced this branch the other way": a
// FAILED_PRECONDITION status whose message starts with HEURISTIC_MIXED. The
// agent makes it, the coordinator recognises it (and stops retrying a call
// that can never succeed), txctl shows it. A message prefix rather than a
// new status code, because the codes map one to one onto gRPC's.
//
//   if (IsHeuristicMixed(status)) { /* record, alert; do not retry */ }
#ifndef TXCOORD_COMMON_HEURISTIC_H_
#define TXCOORD_COMMON_HEURISTIC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace txcoord {

inline constexpr absl::string_view kHeuristicMixed = "HEURISTIC_MIXED";

// FAILED_PRECONDITION "HEURISTIC_MIXED: <detail>".
inline absl::Status HeuristicMixedError(absl::string_view detail) {
  return absl::FailedPreconditionError(absl::StrCat(kHeuristicMixed, ": ", detail));
}

inline bool IsHeuristicMixed(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         absl::StartsWith(status.message(), kHeuristicMixed);
}

}  // namespace txcoord

#endif  // TXCOORD_COMMON_HEURISTIC_H_
