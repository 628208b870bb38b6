// How the coordinator calls the participants of a transaction. Every call
// is asynchronous: `done` runs once, on some other thread (or inline if the
// call fails at once), with the result or the transport error. The daemon
// implements this over gRPC; tests and the simulator use fakes.
#ifndef TXCOORD_COORDINATOR_PARTICIPANT_CLIENT_H_
#define TXCOORD_COORDINATOR_PARTICIPANT_CLIENT_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/actions.h"

namespace txcoord::coordinator {

class ParticipantClient {
 public:
  virtual ~ParticipantClient() = default;
  virtual void Prepare(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
                       std::function<void(absl::StatusOr<Vote>)> done) = 0;
  virtual void Commit(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
                      std::function<void(absl::Status)> done) = 0;
  virtual void Abort(const BranchRef& branch, const std::string& txid, absl::Duration timeout,
                     std::function<void(absl::Status)> done) = 0;
  // `done` gets true if the participant committed, false if it aborted.
  virtual void CommitOnePhase(const BranchRef& branch, const std::string& txid,
                              absl::Duration timeout,
                              std::function<void(absl::StatusOr<bool>)> done) = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_PARTICIPANT_CLIENT_H_
