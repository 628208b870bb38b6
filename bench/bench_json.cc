#include "bench/bench_json.h"

#include "absl/strings/str_format.h"

namespace txcoord::bench {

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonLatency(const LatencyStats& s) {
  return absl::StrFormat(
      "{\"samples\": %d, \"mean\": %.4f, \"p50\": %.4f, \"p95\": %.4f, \"p99\": %.4f, "
      "\"max\": %.4f}",
      s.samples, s.mean_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms);
}

}  // namespace txcoord::bench
