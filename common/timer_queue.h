// The real-time Scheduler: runs callbacks at given times on one background
// thread (the coordinator's engine timers and Commit deadlines, the agent's
// resolver and reaper).
// The engine ignores timers that no longer apply; a timer whose purpose is
// gone early (a Commit answered before its deadline) can be cancelled so
// that its callback is freed at once.
#ifndef TXCOORD_COMMON_TIMER_QUEUE_H_
#define TXCOORD_COMMON_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"

namespace txcoord {

// Thread-safe. Callbacks run on the timer thread, one at a time, with no
// lock of the queue held; they must not block for long.
class TimerQueue final : public Scheduler {
 public:
  using Id = TimerId;

  TimerQueue();
  // Stops the thread; pending timers are dropped.
  ~TimerQueue() override;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  absl::Time Now() override { return absl::Now(); }
  Id Schedule(absl::Time at, std::function<void()> fn) override;
  // The timer will not run (unless it is running or has run: then a no-op).
  void Cancel(Id id) override;
  // Timers scheduled and neither run nor cancelled.
  size_t pending() const;
  // Slots in the heap: pending timers and cancelled ones not yet dropped.
  size_t slots() const;

 private:
  struct Slot {
    absl::Time at;
    Id id;  // keeps equal times in scheduling order
    bool operator>(const Slot& other) const {
      return at != other.at ? at > other.at : id > other.id;
    }
  };
  void Run();
  // Drops cancelled slots from the heap once they are most of it.
  void CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Min-heap on (at, id); a slot whose id is not in `callbacks_` was
  // cancelled and is skipped when it comes up.
  std::vector<Slot> heap_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Id, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Bumped when a new timer is due before every other one: only then does
  // the sleeping thread need waking.
  uint64_t earliest_changes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_TIMER_QUEUE_H_
