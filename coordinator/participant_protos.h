// The Participant calls' protos (txcoord.proto) to and from what a
// ParticipantTransport gives and takes: shared by the gRPC transport and
// the framed one, so that both read an agent's answers alike.
#ifndef TXCOORD_COORDINATOR_PARTICIPANT_PROTOS_H_
#define TXCOORD_COORDINATOR_PARTICIPANT_PROTOS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/participant_transport.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::coordinator {

// kYes or kReadOnly; a NO vote is ABORTED with the participant's reason,
// no vote at all INTERNAL.
absl::StatusOr<Vote> VoteOfProto(const v1::PrepareResponse& response);
// True for COMMITTED, false for ABORTED, INTERNAL for neither.
absl::StatusOr<bool> OnePhaseOutcomeOf(const v1::CommitOnePhaseResponse& response);

// `entries` as a Batch request; `ops` gets each entry's op, in order, for
// BatchAnswersOf.
v1::BatchRequest BatchRequestOf(std::vector<BatchEntry> entries, std::vector<BranchOp>* ops);
// One answer per entry, each as its own call would have returned it;
// INTERNAL when the count of answers is not the count of entries.
absl::StatusOr<std::vector<BatchAnswer>> BatchAnswersOf(const std::vector<BranchOp>& ops,
                                                        const v1::BatchResponse& response);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_PARTICIPANT_PROTOS_H_
