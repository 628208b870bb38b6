// What the fault suites share while a workload runs: how many transactions
// have finished, so that faults land after a number of them rather than
// after a delay; and run sizes that a longer run sets from the environment.
#ifndef TXCOORD_HARNESS_PROGRESS_H_
#define TXCOORD_HARNESS_PROGRESS_H_

#include <cstdlib>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"

namespace txcoord::testing {

// The positive integer in environment variable `name`, else `fallback`.
inline int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  int parsed = 0;
  return value != nullptr && absl::SimpleAtoi(value, &parsed) && parsed > 0 ? parsed : fallback;
}

// Finished transactions, counted by the workload's threads. Thread-safe.
class Progress final {
 public:
  void Finished() {
    absl::MutexLock lock(&mu_);
    ++done_;
  }
  // Returns once at least `n` have finished.
  void AwaitAtLeast(int n) {
    absl::MutexLock lock(&mu_);
    std::pair<int*, int> want(&done_, n);
    mu_.Await(absl::Condition(
        +[](std::pair<int*, int>* w) { return *w->first >= w->second; }, &want));
  }
  int done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  absl::Mutex mu_;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_PROGRESS_H_
