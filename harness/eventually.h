// For tests against real daemons: a poll for state that changes in the
// background with nothing to wait on (a registry seen through discovery, a
// transaction's branches as the coordinator reports them).
#ifndef TXCOORD_HARNESS_EVENTUALLY_H_
#define TXCOORD_HARNESS_EVENTUALLY_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace txcoord::testing {

// Polls `done` every 20 ms until it holds (true) or `timeout` passes (false).
template <typename F>
inline bool Eventually(F done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // polling a view, nothing to wait on
  }
  return true;
}

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_EVENTUALLY_H_
