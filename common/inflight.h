// Counts requests being served so that a daemon can stop once the calls in
// flight are done. gRPC's own Shutdown(deadline) also waits for idle client
// connections to close, which can take the whole deadline.
//
//   grpc::Status Service::Call(...) { InflightTracker::Scope scope(&tracker_); ... }
//   // at shutdown: stop accepting, then
//   tracker.WaitIdle(absl::Now() + absl::Seconds(5));
#ifndef TXCOORD_COMMON_INFLIGHT_H_
#define TXCOORD_COMMON_INFLIGHT_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord {

// Thread-safe.
class InflightTracker final {
 public:
  InflightTracker() = default;
  InflightTracker(const InflightTracker&) = delete;
  InflightTracker& operator=(const InflightTracker&) = delete;

  class Scope final {
   public:
    explicit Scope(InflightTracker* tracker) : tracker_(tracker) {
      absl::MutexLock lock(&tracker_->mu_);
      ++tracker_->count_;
    }
    ~Scope() {
      absl::MutexLock lock(&tracker_->mu_);
      --tracker_->count_;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    InflightTracker* const tracker_;
  };

  // True once no call is in flight; false if `deadline` passed first.
  bool WaitIdle(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(
                                     +[](int* count) { return *count == 0; }, &count_),
                                 deadline);
  }

  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txcoord

#endif  // TXCOORD_COMMON_INFLIGHT_H_
