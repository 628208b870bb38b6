// The coordinator's Prometheus metrics (docs/operations.md lists them): the
// protocol engine's counters and open transactions, read from the runtime
// at scrape time; Commit latency and WAL fsync time, observed as they
// happen through the runtime's and the log's hooks.
//
//   CoordinatorMetrics metrics(&registry);
//   log_options.sync_observer = metrics.WalSyncObserver();
//   runtime_options.on_commit_returned = metrics.CommitObserver();
//   ... make the log and the runtime ...
//   metrics.Watch(runtime);
#ifndef TXCOORD_COORDINATOR_COORDINATOR_METRICS_H_
#define TXCOORD_COORDINATOR_COORDINATOR_METRICS_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "coordinator/batching_participant_client.h"
#include "coordinator/framed_participant_transport.h"
#include "coordinator/runtime.h"
#include "coordinator/wal/log.h"

namespace txcoord::coordinator {

// Registers its metrics in the constructor. The hooks it hands out are
// thread-safe; `registry` must outlive it, and it must outlive the hooks'
// use.
class CoordinatorMetrics final {
 public:
  explicit CoordinatorMetrics(MetricsRegistry* registry);
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // For wal::LogOptions::sync_observer.
  std::function<void(absl::Duration)> WalSyncObserver();
  // For RuntimeOptions::on_commit_returned.
  std::function<void(absl::Duration, const absl::Status&, bool)> CommitObserver();

  // Registers the metrics read from `runtime` (one Runtime::stats() per
  // scrape). Call once; `runtime` must outlive the registry's renders.
  void Watch(Runtime* runtime);
  // Registers the batching counters of the participants' client. Call once;
  // `participants` must outlive the registry's renders.
  void WatchParticipants(BatchingParticipantClient* participants);
  // Registers the framed transport's counters. Call once; `transport` must
  // outlive the registry's renders.
  void WatchFramedParticipants(FramedParticipantTransport* transport);
  // Registers the write-ahead log's batch counters. Call once; `log` must
  // outlive the registry's renders.
  void WatchLog(const wal::Log* log);

 private:
  MetricsRegistry* const registry_;
  Histogram* const wal_fsync_;
  Histogram* const commit_committed_;
  Histogram* const commit_aborted_;
  Histogram* const commit_failed_;
  EngineStats stats_;  // the scrape's snapshot; only used under the registry's lock
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_COORDINATOR_METRICS_H_
