// Lets a Scheduler callback outlive the object that scheduled it: the
// callback does its work only while the gate is open, and Close waits for
// one that is running. The registrar's and discovery's loops (cluster/)
// close theirs first when stopped, so no callback runs on a stopped or
// destroyed object.
//
//   scheduler->After(delay, [gate = gate_, this] { gate->Run([this] { Tick(); }); });
//   ...
//   gate_->Close();  // in Stop() or the destructor, never from Tick
#ifndef TXCOORD_CLUSTER_CALLBACK_GATE_H_
#define TXCOORD_CLUSTER_CALLBACK_GATE_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace txcoord::cluster {

// Thread-safe. Shared (std::shared_ptr) between the owner and its callbacks.
class CallbackGate final {
 public:
  CallbackGate() = default;
  CallbackGate(const CallbackGate&) = delete;
  CallbackGate& operator=(const CallbackGate&) = delete;

  // Runs `fn` unless the gate is closed; callbacks run one at a time.
  // Returns whether it ran.
  template <typename Fn>
  bool Run(Fn&& fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    fn();
    return true;
  }

  // No `fn` starts after this returns, and none is running. Returns false
  // if the gate was closed already. Never call it from inside Run.
  bool Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    const bool was_open = !closed_;
    closed_ = true;
    return was_open;
  }

 private:
  absl::Mutex mu_;  // held while `fn` runs: Close waits for it
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_CALLBACK_GATE_H_
