// For fake gRPC services in tests: records each call that arrives and can
// hold calls at the door until released, so that a test can fill a
// client's in-flight slots and queue more behind them.
//
//   CallGate gate;                       // in the fake service
//   grpc::Status Prepare(...) override { gate.Arrive("Prepare " + txid); ... }
//   gate.Hold(); start calls; gate.WaitForCalls(1); ...; gate.Release();
#ifndef TXCOORD_HARNESS_CALL_GATE_H_
#define TXCOORD_HARNESS_CALL_GATE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace txcoord::testing {

// Thread-safe.
class CallGate {
 public:
  // Records `call`, then waits while the gate is held.
  void Arrive(const std::string& call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(call);
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
  }
  // Calls arrived so far, in order.
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // Holds every call that arrives from now on until Release().
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  // Returns once `n` calls have arrived in all.
  void WaitForCalls(size_t n) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.size() >= n; };
    mu_.Await(absl::Condition(&arrived));
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_CALL_GATE_H_
