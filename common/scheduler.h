// The clock and the timers that long-lived components run on, as
// interfaces, so that the same code runs in the daemons (real time,
// TimerQueue's thread) and in the deterministic simulator (simulated time,
// one thread, sim::EventLoop). Nothing that must run under the simulator
// may call absl::Now() or start a thread of its own: it is given a Clock
// or a Scheduler.
#ifndef TXCOORD_COMMON_SCHEDULER_H_
#define TXCOORD_COMMON_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace txcoord {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The real clock (absl::Now()); a process-wide object, never destroyed.
Clock* RealClock();

// Runs callbacks at given times. Implementations say on which thread; a
// callback never runs inside Schedule or Cancel.
class Scheduler : public Clock {
 public:
  using TimerId = uint64_t;  // never 0

  // Runs `fn` at `at` (at once, if `at` has passed), after every callback
  // due earlier or scheduled earlier for the same instant.
  virtual TimerId Schedule(absl::Time at, std::function<void()> fn) = 0;
  TimerId After(absl::Duration delay, std::function<void()> fn) {
    return Schedule(Now() + delay, std::move(fn));
  }
  // The timer will not run (a no-op if it is running or has run); its
  // callback is freed.
  virtual void Cancel(TimerId id) = 0;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SCHEDULER_H_
