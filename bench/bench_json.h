// The small JSON writing the benchmarks' results need (a quoted string, a
// latency summary), so that every benchmark's file spells them alike.
//
//   absl::StrAppend(&out, "\"txn_ms\": ", JsonLatency(stats), ", \"host\": ", JsonQuote(host));
#ifndef TXCOORD_BENCH_BENCH_JSON_H_
#define TXCOORD_BENCH_BENCH_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "bench/latency_stats.h"

namespace txcoord::bench {

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

// {"samples": N, "mean": ..., "p50": ..., "p95": ..., "p99": ..., "max": ...}
// in milliseconds.
std::string JsonLatency(const LatencyStats& stats);

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_BENCH_JSON_H_
