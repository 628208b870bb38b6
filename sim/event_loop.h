// The simulator's clock, scheduler, randomness and trace. Everything in a
// simulation happens as an event at a simulated time, on one thread, in an
// order fixed by (time, order of scheduling); all randomness comes from one
// generator seeded by the run's seed. Same seed, same run, bit for bit.
//
//   EventLoop loop(/*seed=*/42, /*trace_keep=*/200, /*echo=*/false);
//   loop.After(absl::Milliseconds(5), [&] { loop.Trace("hello"); });
//   while (loop.Step()) {}
#ifndef TXCOORD_SIM_EVENT_LOOP_H_
#define TXCOORD_SIM_EVENT_LOOP_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/scheduler.h"

namespace txcoord::sim {

// Not thread-safe: a simulation has one thread. As a Scheduler it is what
// the production components (coordinator::Runtime, the participant's
// resolver and reaper) run on in a simulation.
class EventLoop final : public Scheduler {
 public:
  // Keeps the last `trace_keep` trace lines; with `echo`, also prints every
  // line to stdout as it happens.
  EventLoop(uint64_t seed, size_t trace_keep, bool echo);
  // Echo only lines containing `filter` (e.g. one txid); empty: every line.
  void set_echo_filter(std::string filter) { echo_filter_ = std::move(filter); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Simulated time; starts at a fixed instant, never reads a real clock.
  absl::Time now() const { return now_; }
  absl::Duration elapsed() const { return now_ - start_; }

  void At(absl::Time at, std::function<void()> fn) { Schedule(at, std::move(fn)); }
  void After(absl::Duration delay, std::function<void()> fn) { At(now_ + delay, std::move(fn)); }

  // --- Scheduler --------------------------------------------------------------
  absl::Time Now() override { return now_; }
  TimerId Schedule(absl::Time at, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  // Runs the earliest event; false if there is none.
  bool Step();
  bool empty() const { return pending_.empty(); }
  uint64_t events_run() const { return events_run_; }

  // --- Randomness (the only source in a run) ----------------------------
  std::mt19937_64& rng() { return rng_; }
  bool Chance(double p);
  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi);
  absl::Duration UniformDuration(absl::Duration lo, absl::Duration hi);
  // Exponentially distributed with the given mean (time to a random fault).
  absl::Duration Exponential(absl::Duration mean);

  // --- Trace ----------------------------------------------------------------
  void Trace(absl::string_view line);
  // The kept lines, oldest first, each prefixed with the simulated time.
  std::vector<std::string> TraceTail() const;
  // A hash of every trace line of the run: equal for equal runs.
  uint64_t trace_hash() const { return trace_hash_; }

 private:
  struct Event {
    absl::Time at;
    uint64_t order = 0;  // also its TimerId
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.order > b.order;
    }
  };

  const absl::Time start_;
  absl::Time now_;
  uint64_t next_order_ = 1;
  absl::flat_hash_set<TimerId> pending_;    // in the queue, to run
  absl::flat_hash_set<TimerId> cancelled_;  // in the queue, to be skipped
  uint64_t events_run_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::mt19937_64 rng_;
  const size_t trace_keep_;
  const bool echo_;
  std::string echo_filter_;
  std::deque<std::string> trace_;
  uint64_t trace_hash_ = 1469598103934665603ull;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_EVENT_LOOP_H_
