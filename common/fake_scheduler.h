// A Scheduler on manual time for unit tests (header only).
#ifndef TXCOORD_COMMON_FAKE_SCHEDULER_H_
#define TXCOORD_COMMON_FAKE_SCHEDULER_H_

#include <algorithm>
#include <functional>
#include <map>
#include <utility>

#include "absl/time/time.h"
#include "common/scheduler.h"

namespace txcoord {

// A Scheduler (and Clock) on manual time. Not thread-safe: callbacks run
// only inside Advance, on the test's thread, in (time, scheduling) order,
// each at its own time.
class FakeScheduler final : public Scheduler {
 public:
  absl::Time Now() override { return now_; }
  TimerId Schedule(absl::Time at, std::function<void()> fn) override {
    const TimerId id = next_id_++;
    timers_.emplace(std::make_pair(std::max(at, now_), id), std::move(fn));
    return id;
  }
  void Cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
    }
  }
  // Runs every callback due within `duration` (also those they schedule),
  // then leaves the time at now + `duration`.
  void Advance(absl::Duration duration) {
    const absl::Time end = now_ + duration;
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      auto next = timers_.extract(timers_.begin());
      now_ = next.key().first;
      next.mapped()();
    }
    now_ = end;
  }
  size_t pending() const { return timers_.size(); }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  TimerId next_id_ = 1;
  std::map<std::pair<absl::Time, TimerId>, std::function<void()>> timers_;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_FAKE_SCHEDULER_H_
