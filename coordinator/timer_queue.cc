#include "coordinator/timer_queue.h"

namespace txcoord::coordinator {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void TimerQueue::Schedule(absl::Time at, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  heap_.push(Entry{at, next_seq_++, std::move(fn)});
}

size_t TimerQueue::pending() const {
  absl::MutexLock lock(&mu_);
  return heap_.size();
}

void TimerQueue::Run() {
  mu_.Lock();
  while (!stopping_) {
    if (heap_.empty()) {
      mu_.Await(absl::Condition(
          +[](TimerQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return q->stopping_ || !q->heap_.empty();
          },
          this));
      continue;
    }
    const absl::Time due = heap_.top().at;
    if (absl::Now() < due) {
      // Wakes early when a timer is scheduled (it may be earlier) or on stop.
      struct Watch {
        TimerQueue* queue;
        uint64_t seen;
      } watch{this, next_seq_};
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Watch* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return w->queue->stopping_ || w->queue->next_seq_ != w->seen;
                                },
                                &watch),
                            due);
      continue;
    }
    std::function<void()> fn = std::move(const_cast<Entry&>(heap_.top()).fn);
    heap_.pop();
    mu_.Unlock();
    fn();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace txcoord::coordinator
