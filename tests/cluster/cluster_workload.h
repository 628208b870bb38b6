// For the cluster-mode tests against real daemons: a bank workload on
// client threads and what its transfers were told (harness/eventually.h
// polls the views that change in the background).
#ifndef TXCOORD_TESTS_CLUSTER_CLUSTER_WORKLOAD_H_
#define TXCOORD_TESTS_CLUSTER_CLUSTER_WORKLOAD_H_

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/bank.h"
#include "harness/eventually.h"

namespace txcoord::testing {

// A bank workload on `threads` threads until stopped; what each transfer
// was told, for the audit.
class Workload {
 public:
  Workload(Bank* bank, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, bank] {
        absl::BitGen rng;
        while (!stop_.load()) {
          TransferResult result = bank->Transfer(rng);
          // No coordinator to begin with (one is being replaced): a client
          // backs off instead of spinning.
          const bool not_begun = result.txid.empty();
          {
            absl::MutexLock lock(&mu_);
            results_.push_back(std::move(result));
          }
          if (not_begun) absl::SleepFor(absl::Milliseconds(20));
        }
      });
    }
  }
  ~Workload() { Stop(); }
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }
  std::vector<TransferResult> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }
  int committed_since(size_t from) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (size_t i = from; i < results_.size(); ++i) {
      n += results_[i].outcome == TransferOutcome::kCommitted;
    }
    return n;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return results_.size();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::vector<TransferResult> results_ ABSL_GUARDED_BY(mu_);
};

inline std::map<std::string, TransferOutcome> Told(const std::vector<TransferResult>& results) {
  std::map<std::string, TransferOutcome> told;
  for (const TransferResult& result : results) {
    if (!result.txid.empty()) told[result.txid] = result.outcome;
  }
  return told;
}

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_CLUSTER_CLUSTER_WORKLOAD_H_
