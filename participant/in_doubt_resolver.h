// Resolves in-doubt branches by itself: a periodic scan, on a Scheduler,
// that asks the coordinator the outcome of every prepared branch the
// coordinator has not settled, with backoff, and commits or aborts it
// accordingly. This is what finishes transactions after an agent restart or
// a lost phase-2 message. It also asks about branches an operator decided
// heuristically, until the coordinator's outcome confirms or contradicts
// (HEURISTIC_MIXED) them. And it asks about unprepared branches the
// coordinator knows that have sat idle a while: their transaction may have
// aborted without its Abort reaching this agent, and an ABORTED answer
// frees their rows long before the idle timeout would. No gRPC and no thread of its own: txagent
// runs it on a TimerQueue and asks over gRPC, the simulator runs it on its EventLoop and asks over
// the simulated network.
//
//   InDoubtResolver resolver(participant, &timers, query, ResolverOptions{});
//   resolver.Start();
#ifndef TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_
#define TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/scheduled_scope.h"
#include "common/scheduler.h"
#include "participant/participant.h"

namespace txcoord::participant {

// What the coordinator says of a txid (its QueryOutcome).
enum class RemoteOutcome { kCommitted, kAborted, kPending };

struct ResolverOptions {
  // A branch prepared less than this long ago is left to the coordinator's
  // own phase 2 (asking would only hear PENDING). Branches found at start,
  // and those whose vote the coordinator refused, are asked at once.
  absl::Duration min_age = absl::Seconds(2);
  absl::Duration poll_interval = absl::Milliseconds(500);
  // Per txid: the wait before asking again after an answer that settles
  // nothing (PENDING, an error), doubled each time up to backoff_max.
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(10);
  // An unprepared branch whose Enlist the coordinator took, unused this
  // long, is asked about (Participant::ListIdleEnlisted); ABORTED rolls it
  // back. Infinite: never. Such questions wait behind those about prepared
  // branches: at most max_idle_asking in flight, and after PENDING asked
  // again after idle_ask_after, doubled each time up to idle_backoff_max.
  absl::Duration idle_ask_after = absl::Seconds(5);
  int max_idle_asking = 4;
  absl::Duration idle_backoff_max = absl::Seconds(30);
};

// Asks the coordinator the outcome of `txid` and calls `done` exactly once
// with the answer or the error (UNAVAILABLE, DEADLINE_EXCEEDED: every
// query must end), from any thread, inside the call or later.
using OutcomeCallback = std::function<void(absl::StatusOr<RemoteOutcome>)>;
using OutcomeQuery = std::function<void(const std::string& txid, OutcomeCallback done)>;

// Thread-safe. Scans and answers run on `scheduler`, one at a time; a
// query's `done` may come from anywhere and is handled there. At most one
// query per txid is in flight, and the resolver remembers only the txids
// that are prepared, heuristically decided and unconfirmed, or asked about.
// `participant` and `scheduler` must outlive it; the participant's clock
// must be on the scheduler's time (prepare times are compared with it).
class InDoubtResolver final {
 public:
  InDoubtResolver(Participant* participant, Scheduler* scheduler, OutcomeQuery query,
                  const ResolverOptions& options);
  // No scan or answer runs after it returns (a running one is waited for);
  // answers still to come are dropped.
  ~InDoubtResolver() = default;
  InDoubtResolver(const InDoubtResolver&) = delete;
  InDoubtResolver& operator=(const InDoubtResolver&) = delete;

  // Runs the first scan as soon as the scheduler can, then one every
  // poll_interval. Branches prepared before this call are asked at once.
  // Call once.
  void Start();

  // Txids the resolver keeps state for. For tests, on the scheduler's
  // thread with no scan running.
  size_t tracked() const { return entries_.size(); }

 private:
  // Why a txid is asked about.
  enum class Kind {
    kPrepared,   // an in-doubt branch
    kHeuristic,  // to confirm an operator's decision
    kIdle,       // an idle unprepared branch: has its transaction aborted?
  };
  struct Entry {
    absl::Time next;       // not asked again before
    absl::Duration delay;  // the wait after the next unsettled answer
    bool asking = false;   // a query is in flight
    Kind kind = Kind::kPrepared;
    bool told = false;  // "not confirmed yet" was logged
  };

  void Scan();
  // The entry of `txid` for questions of `kind`: created if new, started
  // afresh if it was kept for another kind (an idle branch prepared since).
  Entry& EntryFor(const std::string& txid, Kind kind, absl::Time now);
  // Nothing in flight for it, and its backoff is over.
  static bool Due(const Entry& entry, absl::Time now) { return !entry.asking && entry.next <= now; }
  // Asks about `txid` if its entry is due.
  void MaybeAsk(const std::string& txid, Kind kind, absl::Time now);
  void OnAnswer(const std::string& txid, const absl::StatusOr<RemoteOutcome>& outcome);
  // Applies the coordinator's outcome to a prepared branch, or records it
  // next to an operator's decision: true once nothing is left to ask.
  bool ApplyToBranch(const std::string& txid, const absl::StatusOr<RemoteOutcome>& outcome,
                     Entry& entry, absl::Time now);
  bool ApplyToHeuristic(const std::string& txid, const absl::StatusOr<RemoteOutcome>& outcome,
                        Entry& entry, absl::Time now);
  // Rolls an idle unprepared branch back on ABORTED: true once settled.
  bool ApplyToIdle(const std::string& txid, const absl::StatusOr<RemoteOutcome>& outcome,
                   Entry& entry, absl::Time now);
  // Not asked again before `now` + the entry's delay, which then doubles
  // (up to backoff_max, or idle_backoff_max for an idle branch).
  void BackOff(Entry& entry, absl::Time now);

  Participant* const participant_;
  const OutcomeQuery query_;
  const ResolverOptions options_;
  // Only touched on the scope's callbacks (one at a time), and by Start
  // before the first one.
  absl::Time started_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Entry> entries_;
  int idle_asking_ = 0;  // questions about idle branches in flight
  // Declared last: destroyed (closed) first, before what its callbacks use.
  ScheduledScope scope_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_IN_DOUBT_RESOLVER_H_
