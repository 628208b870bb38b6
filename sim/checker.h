// The checker run after every simulation: reads every participant's
// database through the real participant and holds it against the history.
//
// Safety (always):
// - each participant is self-consistent: every balance equals the initial
//   balance plus its ledger rows, so no branch was applied in part;
// - every transaction is all-or-nothing across its branches, and every
//   applied branch holds exactly the writes the client made;
// - told COMMITTED: applied everywhere; told ABORTED, or Commit never called:
//   applied nowhere; the outcome unknown to the client: all or nothing;
// - money is conserved; no ledger row names a transaction nobody began;
// - the coordinator tells the true outcome of every transaction that wrote,
//   whatever crashes it went through (retained outcomes).
// Liveness (after the quiet phase): nothing prepared, no branch, no lock
// left at any participant; nothing open at the coordinator.
#ifndef TXCOORD_SIM_CHECKER_H_
#define TXCOORD_SIM_CHECKER_H_

#include <vector>

#include "sim/client.h"
#include "sim/coordinator_node.h"
#include "sim/history.h"
#include "sim/participant_node.h"

namespace txcoord::sim {

// Adds every safety violation to `history`. Precondition: every participant
// and the coordinator are running.
void CheckSafety(const WorkloadOptions& workload, const CoordinatorNode& coordinator,
                 const std::vector<ParticipantNode*>& participants, History* history);

// Empty if the system is at rest; otherwise what is left, one line each.
// Precondition: every node is running.
std::vector<std::string> Leftovers(CoordinatorNode* coordinator,
                                   const std::vector<ParticipantNode*>& participants);

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_CHECKER_H_
