#include "harness/lock_barrier.h"

#include <algorithm>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace txcoord::testing {
namespace {

// ExecuteRequest.lock_timeout_ms's documented maximum.
constexpr absl::Duration kMaxLockTimeout = absl::Seconds(60);

// One barrier transaction: `write` at every agent in turn, then Abort.
absl::Status BarrierOnce(Client& coordinator, const std::vector<AgentClient*>& agents,
                         const SqlStatement& write, int64_t expected_changes,
                         absl::Duration timeout, absl::Time deadline) {
  // The transaction must outlive every lock wait below.
  absl::StatusOr<std::string> txid = coordinator.Begin(timeout + absl::Seconds(10));
  if (!txid.ok()) return txid.status();
  absl::Status status;
  for (size_t i = 0; i < agents.size() && status.ok(); ++i) {
    ExecuteOptions options;
    options.lock_timeout =
        std::clamp(deadline - absl::Now(), absl::Milliseconds(1), kMaxLockTimeout);
    absl::StatusOr<SqlResult> result =
        agents[i]->ExecuteOne(*txid, write.sql, write.params, options);
    if (!result.ok()) {
      status = absl::Status(
          result.status().code(),
          absl::StrCat("phase 2 did not finish at agent #", i, " within ",
                       absl::FormatDuration(timeout), ": ", result.status().message()));
    } else if (expected_changes >= 0 && result->changes != expected_changes) {
      status = absl::FailedPreconditionError(
          absl::StrCat("barrier write \"", write.sql, "\" changed ", result->changes,
                       " rows at agent #", i, ", expected ", expected_changes));
    }
  }
  absl::Status aborted = coordinator.Abort(*txid);
  if (status.ok() && !aborted.ok()) {
    status = absl::Status(aborted.code(), absl::StrCat("aborting the barrier transaction ", *txid,
                                                       ": ", aborted.message()));
  }
  return status;
}

}  // namespace

absl::Status AwaitPhase2(Client& coordinator, const std::vector<AgentClient*>& agents,
                         const SqlStatement& write, int64_t expected_changes,
                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // The barrier is a transaction too: within a reconnect backoff (up to
  // 2 s) of a coordinator's restart an agent's Enlist to it can still fail
  // with UNAVAILABLE, a clear error a client retries. So does this.
  // The pause outlasts the channel's reconnect backoff in a few tries.
  constexpr int kAttempts = 5;
  absl::Duration pause = absl::Milliseconds(200);
  absl::Status status;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    status = BarrierOnce(coordinator, agents, write, expected_changes, timeout, deadline);
    if (!absl::IsUnavailable(status) || absl::Now() + pause >= deadline) break;
    absl::SleepFor(pause);
    pause *= 2;
  }
  return status;
}

}  // namespace txcoord::testing
