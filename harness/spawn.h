// fork + exec for the test harness, done on one long-lived thread so that
// PR_SET_PDEATHSIG (which fires when the *thread* that forked exits) kills
// the children only when the whole process dies, never when a test's helper
// thread that started a daemon returns.
#ifndef TXCOORD_HARNESS_SPAWN_H_
#define TXCOORD_HARNESS_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// Starts argv[0] (a path, not searched in $PATH) with argv, its fds 0, 1
// and 2 set to the given descriptors and every other descriptor closed, all
// signals unblocked and the usual termination signals at their defaults, in
// a new process group whose id is the child's pid.
// The child gets SIGKILL when this process dies. The caller owns the child
// (must reap it). Thread-safe; spawns are serialised.
absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv, int stdin_fd, int stdout_fd,
                                 int stderr_fd);

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_SPAWN_H_
