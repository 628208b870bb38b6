// Waits for phase 2 to finish at the agents, with no polling: Commit returns
// once the decision is durable at the coordinator, but each agent applies
// its branch a little later, so a test or the demo that reads the database
// files right after Commit could see a half-applied transaction.
//
//   // After Commit of transactions that wrote rows of t at agents a and b:
//   absl::Status done = AwaitPhase2(coordinator, {&a, &b}, {"UPDATE t SET v = v + 1", {}},
//                                   /*expected_changes=*/1000, absl::Seconds(30));
#ifndef TXCOORD_HARNESS_LOCK_BARRIER_H_
#define TXCOORD_HARNESS_LOCK_BARRIER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "common/sql_value.h"

namespace txcoord::testing {

// Runs `write` in one throwaway global transaction at every agent, then
// aborts it. A branch holds row locks from its first write until its phase
// 2 ends, and a write waits for the rows it touches (docs/architecture.md, "Isolation"), so once
// `write` has run at an agent, every branch that had locked any of those
// rows there is finished: committed (applied and forgotten) or aborted.
//
// `write` must really change every row of interest: a no-op UPDATE records
// no change, so it takes no lock and waits for nothing. Each agent's write
// must change exactly `expected_changes` rows (-1: not checked).
// DEADLINE_EXCEEDED or ABORTED if a lock is still held after `timeout`.
// A barrier that fails with UNAVAILABLE (an agent's Enlist within the
// reconnect backoff of a coordinator's restart) is run again, up to 5
// times with growing pauses, within `timeout`.
// Nothing else may write the rows meanwhile. Pointers are not owned.
absl::Status AwaitPhase2(Client& coordinator, const std::vector<AgentClient*>& agents,
                         const SqlStatement& write, int64_t expected_changes,
                         absl::Duration timeout);

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_LOCK_BARRIER_H_
