// Runs callbacks at given times on one background thread: the real-time
// adapter behind the engine's ArmTimer actions. Timers cannot be cancelled;
// the engine ignores timers that no longer apply, which keeps this small.
#ifndef TXCOORD_COORDINATOR_TIMER_QUEUE_H_
#define TXCOORD_COORDINATOR_TIMER_QUEUE_H_

#include <functional>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord::coordinator {

// Thread-safe. Callbacks run on the timer thread, one at a time, with no
// lock of the queue held; they must not block for long.
class TimerQueue final {
 public:
  TimerQueue();
  // Stops the thread; pending timers are dropped.
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void Schedule(absl::Time at, std::function<void()> fn);
  size_t pending() const;

 private:
  struct Entry {
    absl::Time at;
    uint64_t seq;  // keeps equal times in scheduling order
    std::function<void()> fn;
    bool operator>(const Entry& other) const {
      return at != other.at ? at > other.at : seq > other.seq;
    }
  };
  void Run();

  mutable absl::Mutex mu_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_TIMER_QUEUE_H_
