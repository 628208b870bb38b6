// Named failpoints compiled into the daemons so that crash tests can stop a
// process at an exact point of the protocol. Off unless the environment
// variable TXCOORD_FAILPOINTS (or a daemon's --failpoints flag) names them:
//
//   TXCOORD_FAILPOINTS="after-commit-logged=crash"       crash on first hit
//   TXCOORD_FAILPOINTS="mid-phase-two=crash@3"            crash on third hit
//   TXCOORD_FAILPOINTS="before-prepare-reply=stall,x=crash"
//   TXCOORD_FAILPOINTS="before-deferred-votes-durable=delay:1500"
//
// `crash` ends the process at once with _exit(kFailpointExitCode), like a
// kill -9 (no destructors, no flushing); `stall` blocks the thread forever;
// `delay:MS` holds the thread that many milliseconds and lets it go on (a
// window widened, for a test to act in).
// For tests only: never set in production.
#ifndef TXCOORD_COMMON_FAILPOINT_H_
#define TXCOORD_COMMON_FAILPOINT_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace txcoord {

inline constexpr int kFailpointExitCode = 86;

namespace internal {
extern std::atomic<bool> g_failpoints_enabled;
void HitFailpoint(const char* name);
}  // namespace internal

// Parses a specification as above and arms its failpoints (replacing any
// armed before). INVALID_ARGUMENT if malformed. Thread-safe.
absl::Status ArmFailpoints(const std::string& spec);
// Arms what TXCOORD_FAILPOINTS says, if set.
absl::Status ArmFailpointsFromEnvironment();

// For in-process tests: every hit of `name` runs `hook` on the thread that
// hits it (which may block there, holding that thread at that point),
// instead of an armed action. nullptr removes it. Thread-safe.
void SetFailpointHook(const std::string& name, std::function<void()> hook);

}  // namespace txcoord

// Costs one relaxed atomic load when no failpoint is armed.
#define TXCOORD_FAILPOINT(name)                                                    \
  do {                                                                             \
    if (::txcoord::internal::g_failpoints_enabled.load(std::memory_order_relaxed)) \
      ::txcoord::internal::HitFailpoint(name);                                     \
  } while (0)

#endif  // TXCOORD_COMMON_FAILPOINT_H_
