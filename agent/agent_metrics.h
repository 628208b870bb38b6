// The agent's Prometheus metrics (docs/operations.md lists them): counters
// fed by the participant core as a ParticipantObserver, and gauges of
// in-doubt branches, branches, row locks and HEURISTIC_MIXED decisions
// read from the participant at scrape time.
//
//   AgentMetrics metrics(&registry);
//   participant_options.observer = &metrics;
//   ... open the participant ...
//   metrics.Watch(participant);
#ifndef TXCOORD_AGENT_AGENT_METRICS_H_
#define TXCOORD_AGENT_AGENT_METRICS_H_

#include <array>
#include <cstddef>

#include "agent/coordinator_router.h"
#include "common/metrics.h"
#include "participant/participant.h"
#include "participant/participant_observer.h"

namespace txcoord::participant {

// Thread-safe. `registry` must outlive it.
class AgentMetrics final : public ParticipantObserver {
 public:
  explicit AgentMetrics(MetricsRegistry* registry);

  // Registers the gauges read from `participant`, which must outlive every
  // later render of the registry (stop the metrics server first).
  void Watch(Participant* participant);
  // Registers the Enlist batching counters of `link` (same lifetime rule).
  void WatchLink(CoordinatorRouter* link);

  void OnExecute(absl::Duration latency, const absl::Status& status) override;
  void OnLockTimeout() override;
  void OnPrepare(Vote vote) override;
  void OnCommit() override;
  void OnAbort(RollbackReason reason) override;
  void OnVoteSigned() override;
  void OnVoteDeferred() override;

 private:
  struct Snapshot {
    size_t in_doubt = 0;
    size_t branches = 0;
    size_t locks = 0;
    size_t heuristic_mixed = 0;
  };

  MetricsRegistry* const registry_;
  Histogram* const execute_latency_;
  Counter* const lock_timeouts_;
  Counter* const prepares_yes_;
  Counter* const prepares_no_;
  Counter* const prepares_read_only_;
  Counter* const commits_;
  Counter* const votes_signed_;
  Counter* const votes_deferred_;
  std::array<Counter*, kRollbackReasons> aborts_;  // by RollbackReason
  Snapshot snapshot_;  // the scrape's; only used under the registry's lock
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_AGENT_METRICS_H_
