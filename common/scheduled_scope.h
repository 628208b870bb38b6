// Lets a component run its work as callbacks on a Scheduler and still be
// destroyed at any time: the participant's maintenance, the in-doubt
// resolver and the registry's loops (cluster/) use it, on a TimerQueue in txagent and on the
// simulator's EventLoop. Callbacks run one at a time (never two of one scope at once, even on a
// scheduler with several threads), and none starts once the scope is closed: a component that
// closes its scope first in its destructor never has a callback run on a destroyed object.
//
//   ScheduledScope scope(scheduler);
//   scope.After(absl::Seconds(1), [this] { Tick(); });
//   query(txid, scope.Bind<absl::Status>([this](absl::Status s) { OnReply(s); }));
#ifndef TXCOORD_COMMON_SCHEDULED_SCOPE_H_
#define TXCOORD_COMMON_SCHEDULED_SCOPE_H_

#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"

namespace txcoord {

// Thread-safe. `scheduler` must outlive the scope.
class ScheduledScope final {
 public:
  explicit ScheduledScope(Scheduler* scheduler);
  // Closes the scope.
  ~ScheduledScope();
  ScheduledScope(const ScheduledScope&) = delete;
  ScheduledScope& operator=(const ScheduledScope&) = delete;

  Scheduler* scheduler() const { return shared_->scheduler; }
  absl::Time Now() const { return shared_->scheduler->Now(); }

  // Runs `fn` on the scheduler at `at` (or `delay` from now), unless the
  // scope is closed by then. A no-op once closed.
  void Schedule(absl::Time at, std::function<void()> fn) {
    Shared::Schedule(shared_, at, std::move(fn));
  }
  void After(absl::Duration delay, std::function<void()> fn) {
    Schedule(Now() + delay, std::move(fn));
  }

  // A completion for work done elsewhere (an RPC's reply): calling it, from
  // any thread, at any time, even inside the call that was given it and
  // after the scope is gone, runs `fn` with the value on the scheduler as
  // soon as possible, unless the scope is closed by then.
  template <typename T>
  std::function<void(T)> Bind(std::function<void(T)> fn) {
    return [shared = shared_, fn = std::move(fn)](T value) {
      // The scheduler may be gone once the scope is closed: never touched then.
      absl::MutexLock lock(&shared->mu);
      if (shared->closed) return;
      Shared::ScheduleLocked(shared, shared->scheduler->Now(),
                             [fn, value = std::move(value)]() mutable { fn(std::move(value)); });
    };
  }

  // No callback of the scope starts after this returns, and none is running
  // (a running one is waited for); pending timers are cancelled.
  // Idempotent. Never call it from one of the scope's own callbacks.
  void Close();

 private:
  // Outlives the scope for as long as a timer or a Bind completion holds it.
  struct Shared {
    static void Schedule(const std::shared_ptr<Shared>& shared, absl::Time at,
                         std::function<void()> fn);
    static void ScheduleLocked(const std::shared_ptr<Shared>& shared, absl::Time at,
                               std::function<void()> fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu);

    Scheduler* scheduler = nullptr;
    // Held while a callback runs: callbacks run one at a time, and Close
    // waits for the running one.
    absl::Mutex run;
    absl::Mutex mu ABSL_ACQUIRED_AFTER(run);
    bool closed ABSL_GUARDED_BY(mu) = false;
    absl::flat_hash_set<Scheduler::TimerId> pending ABSL_GUARDED_BY(mu);
  };

  const std::shared_ptr<Shared> shared_;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SCHEDULED_SCOPE_H_
