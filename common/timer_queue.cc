#include "common/timer_queue.h"

#include <algorithm>
#include <utility>

namespace txcoord {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(absl::Time at, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  const Id id = next_id_++;
  if (heap_.empty() || at < heap_.front().at) ++earliest_changes_;
  heap_.push_back(Slot{at, id});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<Slot>());
  callbacks_.emplace(id, std::move(fn));
  return id;
}

void TimerQueue::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  if (callbacks_.erase(id) == 0) return;
  CompactLocked();
}

void TimerQueue::CompactLocked() {
  // Amortised: a rebuild costs the heap's size and leaves at most half of
  // it, so the next one is at least that many cancellations away.
  if (heap_.size() < 1024 || callbacks_.size() * 2 > heap_.size()) return;
  heap_.erase(std::remove_if(heap_.begin(), heap_.end(),
                             [this](const Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                               return !callbacks_.contains(slot.id);
                             }),
              heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), std::greater<Slot>());
}

size_t TimerQueue::pending() const {
  absl::MutexLock lock(&mu_);
  return callbacks_.size();
}

size_t TimerQueue::slots() const {
  absl::MutexLock lock(&mu_);
  return heap_.size();
}

void TimerQueue::Run() {
  mu_.Lock();
  while (!stopping_) {
    if (heap_.empty()) {
      mu_.Await(absl::Condition(
          +[](TimerQueue* q)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->stopping_ || !q->heap_.empty(); },
          this));
      continue;
    }
    const Slot next = heap_.front();
    auto callback = callbacks_.find(next.id);
    if (callback == callbacks_.end()) {  // cancelled
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<Slot>());
      heap_.pop_back();
      continue;
    }
    if (absl::Now() < next.at) {
      // Wakes early only when a timer due sooner is scheduled, or on stop.
      struct Watch {
        TimerQueue* queue;
        uint64_t seen;
      } watch{this, earliest_changes_};
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Watch* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->queue->mu_) {
                                  return w->queue->stopping_ ||
                                         w->queue->earliest_changes_ != w->seen;
                                },
                                &watch),
                            next.at);
      continue;
    }
    std::function<void()> fn = std::move(callback->second);
    callbacks_.erase(callback);
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<Slot>());
    heap_.pop_back();
    mu_.Unlock();
    fn();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace txcoord
