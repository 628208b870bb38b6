#include "coordinator/coordinator_metrics.h"

#include <string>

namespace txcoord::coordinator {
namespace {

constexpr char kCommitLatency[] = "txcoord_commit_latency_seconds";
constexpr char kCommitLatencyHelp[] =
    "Duration of Commit calls, by what they returned (committed, aborted, or error: the "
    "outcome was not known to the caller, e.g. its deadline passed).";

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(MetricsRegistry* registry)
    : registry_(registry),
      wal_fsync_(registry->AddHistogram(
          "txcoord_wal_fsync_seconds",
          "Duration of each fdatasync of the write-ahead log (one per group-commit batch).",
          SyncBuckets())),
      commit_committed_(registry->AddHistogram(kCommitLatency, kCommitLatencyHelp, LatencyBuckets(),
                                               {{"outcome", "committed"}})),
      commit_aborted_(registry->AddHistogram(kCommitLatency, kCommitLatencyHelp, LatencyBuckets(),
                                             {{"outcome", "aborted"}})),
      commit_failed_(registry->AddHistogram(kCommitLatency, kCommitLatencyHelp, LatencyBuckets(),
                                            {{"outcome", "error"}})) {}

std::function<void(absl::Duration)> CoordinatorMetrics::WalSyncObserver() {
  return [histogram = wal_fsync_](absl::Duration took) { histogram->Observe(took); };
}

std::function<void(absl::Duration, const absl::Status&, bool)>
CoordinatorMetrics::CommitObserver() {
  return [this](absl::Duration took, const absl::Status& status, bool committed) {
    Histogram* histogram =
        !status.ok() ? commit_failed_ : (committed ? commit_committed_ : commit_aborted_);
    histogram->Observe(took);
  };
}

void CoordinatorMetrics::Watch(Runtime* runtime) {
  registry_->AddRenderHook([this, runtime] { stats_ = runtime->stats(); });
  const auto counter = [this](const std::string& name, const std::string& help,
                              uint64_t EngineStats::*field, const MetricLabels& labels = {}) {
    registry_->AddCounterFunction(
        name, help, [this, field] { return static_cast<double>(stats_.*field); }, labels);
  };
  counter("txcoord_commits_total",
          "Transactions decided COMMIT (logged durably, all read-only, or one-phase) since start.",
          &EngineStats::committed);
  counter("txcoord_aborts_total",
          "Transactions decided ABORT since start (NO vote, timeout, client or operator abort).",
          &EngineStats::aborted);
  constexpr char kVotes[] = "txcoord_votes_total";
  constexpr char kVotesHelp[] =
      "Prepare outcomes taken into account, by vote (failed: the Prepare call got no answer).";
  counter(kVotes, kVotesHelp, &EngineStats::votes_yes, {{"vote", "yes"}});
  counter(kVotes, kVotesHelp, &EngineStats::votes_no, {{"vote", "no"}});
  counter(kVotes, kVotesHelp, &EngineStats::votes_read_only, {{"vote", "read_only"}});
  counter(kVotes, kVotesHelp, &EngineStats::votes_failed, {{"vote", "failed"}});
  counter("txcoord_phase2_retries_total",
          "Phase-2 Commit (or one-phase commit) calls that failed and were scheduled again.",
          &EngineStats::phase2_retries);
  counter("txcoord_retained_chunks_dropped_total",
          "Chunks of retained outcomes dropped (past --outcome_retention, or over "
          "--outcome_retention_max_bytes): the txids they covered now answer OUT_OF_RANGE.",
          &EngineStats::retained_chunks_dropped);
  counter("txcoord_txids_reserved_total",
          "Txids reserved by clients (ReserveTxids) to begin without a Begin call.",
          &EngineStats::txids_reserved);
  counter("txcoord_reserved_txids_begun_total",
          "Reserved txids that began at their first Enlist or Commit.",
          &EngineStats::reserved_begun);
  counter("txcoord_reserved_txids_unused_total",
          "Reserved txids that never began: their reservation expired or was dropped at "
          "shutdown, or an Abort or QueryOutcome came first.",
          &EngineStats::reserved_unused);
  counter("txcoord_txids_skipped_total",
          "Txids never to be issued: an agent asked their outcome before this coordinator "
          "issued them (a client made them up), so they were presumed aborted.",
          &EngineStats::txids_skipped);
  registry_->AddGauge("txcoord_reserved_txids_outstanding",
                      "Reserved txids not yet used whose reservation still lives.",
                      [this] { return static_cast<double>(stats_.reserved_outstanding); });
  registry_->AddGauge("txcoord_retained_committed_txids",
                      "Committed txids whose outcome is retained after they ended (Commit and "
                      "GetTransaction answer them COMMITTED).",
                      [this] { return static_cast<double>(stats_.retained_committed); });
  registry_->AddGauge("txcoord_retained_outcome_bytes",
                      "Memory of the retained outcomes' bitmaps (bounded by "
                      "--outcome_retention_max_bytes; also copied into each WAL checkpoint).",
                      [this] { return static_cast<double>(stats_.retained_bytes); });
  registry_->AddGauge("txcoord_open_transactions",
                      "Transactions begun or recovered and not finished (includes COMMITTING "
                      "ones still waiting for phase-2 acknowledgements).",
                      [this] { return static_cast<double>(stats_.open); });
  registry_->AddGauge("txcoord_oldest_open_transaction_seconds",
                      "Age of the oldest open transaction (since Begin, or since recovery); 0 "
                      "when none is open.",
                      [this] { return absl::ToDoubleSeconds(stats_.oldest_open_age); });
  registry_->AddGauge("txcoord_heuristic_mixed_branches",
                      "Branches of open transactions whose agent answered HEURISTIC_MIXED (an "
                      "operator forced the other outcome there): repair by hand, then txctl "
                      "mark-done.",
                      [this] { return static_cast<double>(stats_.heuristic_mixed_branches); });
}

void CoordinatorMetrics::WatchParticipants(BatchingParticipantClient* participants) {
  registry_->AddCounterFunction(
      "txcoord_participant_batches_total",
      "Batch calls sent to participants: Prepare, Commit and Abort calls that queued while two "
      "calls to the same participant were in flight, sent together.",
      [participants] { return static_cast<double>(participants->batches_sent()); });
  registry_->AddCounterFunction(
      "txcoord_participant_batched_calls_total",
      "Prepare, Commit and Abort calls carried in Batch calls (divide by "
      "txcoord_participant_batches_total for the mean batch size).",
      [participants] { return static_cast<double>(participants->batched_entries()); });
}

void CoordinatorMetrics::WatchFramedParticipants(FramedParticipantTransport* transport) {
  registry_->AddCounterFunction(
      "txcoord_framed_participant_calls_total",
      "Prepare, Commit, Abort, one-phase and Batch calls answered on agents' framed ports.",
      [transport] { return static_cast<double>(transport->framed_calls()); });
  registry_->AddCounterFunction(
      "txcoord_framed_participant_fallbacks_total",
      "Participant calls sent again over gRPC after their framed port failed (refused, "
      "unreachable, connection lost); the agent's framed port is then not used until it "
      "enlists again.",
      [transport] { return static_cast<double>(transport->fallbacks()); });
  registry_->AddGauge("txcoord_framed_participant_threads",
                      "Threads sending calls to agents' framed ports (at most 4 per agent; each "
                      "ends after 30 s idle).",
                      [transport] { return static_cast<double>(transport->threads()); });
}

void CoordinatorMetrics::WatchLog(const wal::Log* log) {
  constexpr char kBatches[] = "txcoord_wal_batches_total";
  constexpr char kBatchesHelp[] =
      "Write-ahead log batches written (one write, and one fdatasync if a record in it asked "
      "for one), by the thread that wrote them: the log's writer thread, or the appending "
      "thread (a framed Commit's that found the log idle, or one that wrote an END record "
      "alone).";
  registry_->AddCounterFunction(
      kBatches, kBatchesHelp,
      [log] {
        const wal::Log::Stats stats = log->stats();
        return static_cast<double>(stats.batches - stats.appender_batches);
      },
      {{"writer", "log"}});
  registry_->AddCounterFunction(
      kBatches, kBatchesHelp, [log] { return static_cast<double>(log->stats().appender_batches); },
      {{"writer", "appender"}});
  registry_->AddCounterFunction(
      "txcoord_wal_preallocations_total",
      "Zero fills written and synced ahead of the write-ahead log's appends "
      "(--wal_preallocate_bytes): each holds the log for the writes and one fdatasync of up to "
      "that many bytes.",
      [log] { return static_cast<double>(log->stats().preallocations); });
}

}  // namespace txcoord::coordinator
