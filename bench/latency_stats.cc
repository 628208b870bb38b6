#include "bench/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace txcoord::bench {

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

LatencyStats Summarize(std::vector<Clock::duration> samples) {
  LatencyStats stats;
  stats.samples = samples.size();
  if (samples.empty()) return stats;
  std::sort(samples.begin(), samples.end());
  auto rank = [&samples](double p) {
    const auto index = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return Millis(samples[std::clamp<size_t>(index, 1, samples.size()) - 1]);
  };
  Clock::duration sum{};
  for (Clock::duration d : samples) sum += d;
  stats.mean_ms = Millis(sum) / static_cast<double>(samples.size());
  stats.p50_ms = rank(0.50);
  stats.p95_ms = rank(0.95);
  stats.p99_ms = rank(0.99);
  stats.max_ms = Millis(samples.back());
  return stats;
}

}  // namespace txcoord::bench
