// Resolves in-doubt branches by itself: a background thread that asks the
// coordinator the outcome of every prepared branch the coordinator has not
// settled, with backoff, and commits or aborts it accordingly. This is what
// finishes transactions after an agent restart or a lost phase-2 message.
// It also asks about branches an operator decided heuristically, until the
// coordinator's outcome confirms or contradicts (HEURISTIC_MIXED) them.
#ifndef TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_
#define TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "participant/coordinator_link.h"
#include "participant/participant.h"

namespace txcoord::participant {

struct ResolverOptions {
  // A branch prepared less than this long ago is left to the coordinator's
  // own phase 2 (asking would only hear PENDING). Branches found at start
  // are asked at once.
  absl::Duration min_age = absl::Seconds(2);
  absl::Duration poll_interval = absl::Milliseconds(500);
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(10);
};

using OutcomeQuery = std::function<absl::StatusOr<RemoteOutcome>(const std::string& txid)>;

// Starts its thread on construction, stops it on destruction. `participant`
// must outlive it.
class InDoubtResolver final {
 public:
  InDoubtResolver(Participant* participant, OutcomeQuery query, const ResolverOptions& options);
  ~InDoubtResolver();
  InDoubtResolver(const InDoubtResolver&) = delete;
  InDoubtResolver& operator=(const InDoubtResolver&) = delete;

 private:
  struct Backoff {
    absl::Time next;
    absl::Duration delay;
  };
  void Run();
  void ResolveOnce(absl::Time now);
  // Heuristic decisions whose coordinator outcome is unknown; adds their
  // txids to `seen`.
  void CheckHeuristics(absl::Time now, absl::flat_hash_set<std::string>* seen);

  Participant* const participant_;
  const OutcomeQuery query_;
  const ResolverOptions options_;
  const absl::Time started_;
  absl::flat_hash_map<std::string, Backoff> backoff_;  // only the resolver thread
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_
