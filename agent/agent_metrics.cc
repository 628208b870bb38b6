#include "agent/agent_metrics.h"

#include <vector>

namespace txcoord::participant {
namespace {

constexpr char kPrepares[] = "txagent_prepares_total";
constexpr char kPreparesHelp[] =
    "Prepare requests answered (Prepare calls and Execute with prepare), by vote.";

}  // namespace

AgentMetrics::AgentMetrics(MetricsRegistry* registry)
    : registry_(registry),
      execute_latency_(registry->AddHistogram(
          "txagent_execute_latency_seconds",
          "Duration of Execute calls, row-lock waits included, whatever they returned.",
          LatencyBuckets())),
      lock_timeouts_(registry->AddCounter(
          "txagent_lock_timeouts_total",
          "Execute calls that failed (ABORTED) waiting for a row lock another branch held.")),
      prepares_yes_(registry->AddCounter(kPrepares, kPreparesHelp, {{"vote", "yes"}})),
      prepares_no_(registry->AddCounter(kPrepares, kPreparesHelp, {{"vote", "no"}})),
      prepares_read_only_(registry->AddCounter(kPrepares, kPreparesHelp, {{"vote", "read_only"}})),
      commits_(registry->AddCounter(
          "txagent_commits_total",
          "Branches whose changes were applied (phase 2, one-phase, or heuristic commit).")),
      votes_signed_(registry->AddCounter(
          "txagent_votes_signed_total",
          "YES votes signed into an Execute's answer for the client's Commit to carry, instead "
          "of sent by Enlist (also counted in txagent_prepares_total).")),
      votes_deferred_(registry->AddCounter(
          "txagent_votes_deferred_total",
          "YES votes deferred: their Execute answered before its sync, the vote to follow by "
          "Enlist once a sync covers the prepare (--vote_deferral; also counted in "
          "txagent_prepares_total).")) {
  for (int i = 0; i < kRollbackReasons; ++i) {
    aborts_[i] = registry->AddCounter(
        "txagent_aborts_total",
        "Branches rolled back, by reason (the coordinator's abort, a refused enlistment, a "
        "replaced branch, a failed one-phase commit, a heuristic abort, the idle timeout, the "
        "client's Release, a coordinator epoch left behind); NO votes are in "
        "txagent_prepares_total.",
        {{"reason", RollbackReasonLabel(static_cast<RollbackReason>(i))}});
  }
}

void AgentMetrics::Watch(Participant* participant) {
  registry_->AddRenderHook([this, participant] {
    snapshot_.in_doubt = participant->ListPrepared().size();
    snapshot_.branches = participant->BranchCount();
    snapshot_.locks = participant->LockCount();
    snapshot_.heuristic_mixed = 0;
    if (absl::StatusOr<std::vector<HeuristicDecision>> decisions = participant->ListHeuristics();
        decisions.ok()) {
      for (const HeuristicDecision& d : *decisions) snapshot_.heuristic_mixed += d.mixed ? 1 : 0;
    }
  });
  registry_->AddCounterFunction(
      "txagent_wal_syncs_total",
      "fdatasyncs of the database's -wal file (group commit: one covers every commit made "
      "before it began).",
      [participant] { return static_cast<double>(participant->SyncCount()); });
  constexpr char kPhase2Syncs[] = "txagent_phase2_sync_waits_total";
  constexpr char kPhase2SyncsHelp[] =
      "Phase-2 answers that waited up to --phase2_sync_delay for a sync: covered by another "
      "call's sync (shared) or syncing themselves once the delay passed (own).";
  registry_->AddCounterFunction(
      kPhase2Syncs, kPhase2SyncsHelp,
      [participant] { return static_cast<double>(participant->Phase2SyncCounts().shared); },
      {{"how", "shared"}});
  registry_->AddCounterFunction(
      kPhase2Syncs, kPhase2SyncsHelp,
      [participant] { return static_cast<double>(participant->Phase2SyncCounts().own); },
      {{"how", "own"}});
  registry_->AddGauge("txagent_in_doubt_branches",
                      "Prepared branches waiting for the coordinator's outcome.",
                      [this] { return static_cast<double>(snapshot_.in_doubt); });
  registry_->AddGauge("txagent_branches", "Branches known in memory (active or prepared).",
                      [this] { return static_cast<double>(snapshot_.branches); });
  registry_->AddGauge("txagent_row_locks", "Row lock keys held by all branches.",
                      [this] { return static_cast<double>(snapshot_.locks); });
  registry_->AddGauge("txagent_heuristic_mixed_branches",
                      "Heuristic decisions an operator took here that the coordinator's outcome "
                      "contradicts (HEURISTIC_MIXED: repair by hand).",
                      [this] { return static_cast<double>(snapshot_.heuristic_mixed); });
}

void AgentMetrics::OnExecute(absl::Duration latency, const absl::Status&) {
  execute_latency_->Observe(latency);
}

void AgentMetrics::OnLockTimeout() { lock_timeouts_->Increment(); }

void AgentMetrics::OnPrepare(Vote vote) {
  switch (vote) {
    case Vote::kYes:
      prepares_yes_->Increment();
      break;
    case Vote::kNo:
      prepares_no_->Increment();
      break;
    case Vote::kReadOnly:
      prepares_read_only_->Increment();
      break;
  }
}

void AgentMetrics::OnCommit() { commits_->Increment(); }
void AgentMetrics::OnAbort(RollbackReason reason) {
  aborts_[static_cast<int>(reason)]->Increment();
}

void AgentMetrics::OnVoteSigned() { votes_signed_->Increment(); }
void AgentMetrics::OnVoteDeferred() { votes_deferred_->Increment(); }

void AgentMetrics::WatchLink(CoordinatorRouter* link) {
  registry_->AddCounterFunction(
      "txagent_enlist_batches_total",
      "EnlistBatch calls sent: Enlists of concurrent Executes that waited while two Enlists "
      "were in flight, sent together.",
      [link] { return static_cast<double>(link->batches_sent()); });
  registry_->AddCounterFunction(
      "txagent_enlist_batched_total", "Enlists carried in EnlistBatch calls.",
      [link] { return static_cast<double>(link->batched_enlistments()); });
  registry_->AddCounterFunction(
      "txagent_framed_enlist_calls_total",
      "Enlist and EnlistBatch calls answered on the coordinator's framed port (named in its "
      "Enlist answers; not with TLS to it).",
      [link] { return static_cast<double>(link->framed_calls()); });
  registry_->AddCounterFunction(
      "txagent_framed_enlist_fallbacks_total",
      "Enlist and EnlistBatch calls sent again over gRPC after the coordinator's framed port "
      "failed (refused, unreachable for 1 s, connection lost).",
      [link] { return static_cast<double>(link->framed_fallbacks()); });
}

}  // namespace txcoord::participant
