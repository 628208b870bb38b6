// Percentile summaries of latency samples for the benchmarks: the same
// nearest-rank definition everywhere, so that a p99 in one table means the
// same as in another.
//
//   LatencyStats stats = Summarize(samples);  // sorts a copy
//   std::printf("p50 %.3f ms\n", stats.p50_ms);
#ifndef TXCOORD_BENCH_LATENCY_STATS_H_
#define TXCOORD_BENCH_LATENCY_STATS_H_

#include <chrono>
#include <cstddef>
#include <vector>

namespace txcoord::bench {

using Clock = std::chrono::steady_clock;

double Millis(Clock::duration d);

// Plain value. All figures are milliseconds; all zero when there are no
// samples.
struct LatencyStats {
  size_t samples = 0;
  double mean_ms = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// Nearest-rank percentiles (p99 of 100 samples is the 99th smallest).
LatencyStats Summarize(std::vector<Clock::duration> samples);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_LATENCY_STATS_H_
