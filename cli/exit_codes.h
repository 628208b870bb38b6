// txctl's exit codes: what happened, for scripts. Documented in
// `txctl --help` and docs/operations.md; never renumber them.
#ifndef TXCOORD_CLI_EXIT_CODES_H_
#define TXCOORD_CLI_EXIT_CODES_H_

#include "absl/status/status.h"

namespace txcoord::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,        // bad command line, or a malformed argument (INVALID_ARGUMENT)
  kExitNotFound = 2,     // NOT_FOUND: no such transaction, branch, or directory
  kExitRefused = 3,      // FAILED_PRECONDITION or PERMISSION_DENIED: wrong state, not allowed
  kExitUnreachable = 4,  // UNAVAILABLE or DEADLINE_EXCEEDED: the daemon did not answer
  kExitError = 5,        // anything else
  kExitCorrupt = 6,      // `wal check` / `wal dump` found corruption (DATA_LOSS)
};

inline int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitRefused;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kDataLoss:
      return kExitCorrupt;
    default:
      return kExitError;
  }
}

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_EXIT_CODES_H_
