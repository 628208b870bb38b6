#include "sim/event_loop.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace txcoord::sim {

EventLoop::EventLoop(uint64_t seed, size_t trace_keep, bool echo)
    : start_(absl::FromUnixSeconds(1700000000)),
      now_(start_),
      rng_(seed),
      trace_keep_(trace_keep),
      echo_(echo) {}

Scheduler::TimerId EventLoop::Schedule(absl::Time at, std::function<void()> fn) {
  // An event never runs in the past: a timer armed for an earlier instant
  // fires now, after the events already due.
  if (at < now_) at = now_;
  const TimerId id = next_order_++;
  queue_.push(Event{at, id, std::move(fn)});
  pending_.insert(id);
  return id;
}

void EventLoop::Cancel(TimerId id) {
  // The slot stays in the queue until it comes up, and is skipped then.
  if (pending_.erase(id) != 0) cancelled_.insert(id);
}

bool EventLoop::Step() {
  Event event;
  while (true) {
    if (queue_.empty()) return false;
    // priority_queue::top is const; the function is moved out before pop.
    event = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    if (cancelled_.erase(event.order) == 0) break;
  }
  pending_.erase(event.order);
  now_ = event.at;
  ++events_run_;
  event.fn();
  return true;
}

bool EventLoop::Chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

int64_t EventLoop::Uniform(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
}

absl::Duration EventLoop::UniformDuration(absl::Duration lo, absl::Duration hi) {
  if (hi <= lo) return lo;
  const int64_t span = absl::ToInt64Microseconds(hi - lo);
  return lo + absl::Microseconds(Uniform(0, span));
}

absl::Duration EventLoop::Exponential(absl::Duration mean) {
  const double u = std::uniform_real_distribution<double>(1e-12, 1.0)(rng_);
  return absl::Microseconds(static_cast<int64_t>(-std::log(u) * absl::ToDoubleMicroseconds(mean)));
}

void EventLoop::Trace(absl::string_view line) {
  std::string entry = absl::StrFormat("%10.6f %s", absl::ToDoubleSeconds(now_ - start_), line);
  for (unsigned char c : entry) trace_hash_ = (trace_hash_ ^ c) * 1099511628211ull;
  if (echo_ && (echo_filter_.empty() || line.find(echo_filter_) != absl::string_view::npos)) {
    std::printf("%s\n", entry.c_str());
  }
  if (trace_keep_ == 0) return;
  trace_.push_back(std::move(entry));
  if (trace_.size() > trace_keep_) trace_.pop_front();
}

std::vector<std::string> EventLoop::TraceTail() const {
  return std::vector<std::string>(trace_.begin(), trace_.end());
}

}  // namespace txcoord::sim
