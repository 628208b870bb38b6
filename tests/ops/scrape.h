// Reading a daemon's Prometheus endpoint from a test: where it listens (from
// the "<name> metrics on HOST:PORT" line of its log), a plain HTTP GET, and
// the page parsed into series -> value.
//
//   absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster->coordinator_log());
//   absl::StatusOr<Scrape> page = ScrapeMetrics(*address);
//   page->Value("txcoord_commits_total");
#ifndef TXCOORD_TESTS_OPS_SCRAPE_H_
#define TXCOORD_TESTS_OPS_SCRAPE_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// The address in the last "metrics on HOST:PORT" line of `log_path` (a
// restarted daemon appends to the same log). NOT_FOUND if there is none.
absl::StatusOr<std::string> MetricsAddressFromLog(const std::string& log_path);

// Sends "GET <path> HTTP/1.1" to `address` ("127.0.0.1:PORT") and returns
// the whole response (status line, headers, body) once the server closes.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path);

struct Scrape {
  std::string text;                      // the body
  std::map<std::string, double> series;  // `name{labels}` exactly as printed -> value

  // The value of `series`, if the page has it.
  std::optional<double> Value(const std::string& series) const;
  // `metric` as one series ("name{labels}", or a name printed without
  // labels), or else the sum of every series of that name.
  std::optional<double> Sum(const std::string& metric) const;
};

// GET /metrics, checked for a 200 and parsed.
absl::StatusOr<Scrape> ScrapeMetrics(const std::string& address);

// Scrape::Sum of `metric` on the daemon that logs to `log_path`; NOT_FOUND
// when its page has no such series.
absl::StatusOr<double> MetricInLog(const std::string& log_path, const std::string& metric);

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPS_SCRAPE_H_
