// How much coordinator memory an open transaction costs: opens many
// transactions (Begin, then Enlist of a few branches, never committed) and
// reads the coordinator's resident set size from /proc as it grows.
//
//   absl::StatusOr<OpenTxnMemory> m = MeasureOpenTxnMemory(address, pid, 40000, 3);
#ifndef TXCOORD_BENCH_OPEN_TXN_MEMORY_H_
#define TXCOORD_BENCH_OPEN_TXN_MEMORY_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace txcoord::bench {

struct OpenTxnMemory {
  int64_t transactions = 0;  // opened in total
  int branches = 0;          // enlisted per transaction
  int64_t rss_before = 0;    // bytes, before the first Begin
  int64_t rss_half = 0;      // after the first half
  int64_t rss_after = 0;     // after all
  // (rss_after - rss_half) / (transactions / 2): the slope over the second
  // half, so that allocator caches left over from earlier work (which the
  // first transactions reuse) do not flatter the figure.
  double bytes_per_transaction = 0;
  double seconds = 0;
};

// Opens `transactions` transactions at the coordinator at `address` (whose
// process is `pid`), each with `branches` enlisted branches of made-up
// participants whose endpoints nothing listens on, from a few threads. The
// transactions are left open (deadline one hour), so run this last and stop
// the coordinator afterwards: at their deadline it would try to reach the
// made-up participants.
absl::StatusOr<OpenTxnMemory> MeasureOpenTxnMemory(const std::string& address, pid_t pid,
                                                   int64_t transactions, int branches);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_OPEN_TXN_MEMORY_H_
