// A small Prometheus metrics registry: counters, histograms with fixed
// buckets, and gauges (or counters) whose value is read from a callback at
// scrape time; Render() writes them in the Prometheus text exposition
// format 0.0.4. Daemons serve it over HTTP (common/metrics_server.h);
// domain code never sees it (it reports through observer interfaces).
//
//   MetricsRegistry registry;
//   Counter* commits = registry.AddCounter("txcoord_commits_total", "Transactions committed.");
//   Histogram* latency = registry.AddHistogram("txcoord_commit_latency_seconds",
//                                              "Commit call duration.", LatencyBuckets());
//   registry.AddGauge("txcoord_open_transactions", "Open transactions.",
//                     [&] { return double(runtime.open_transactions()); });
//   commits->Increment();
//   latency->Observe(0.004);
//   std::string text = registry.Render();
#ifndef TXCOORD_COMMON_METRICS_H_
#define TXCOORD_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord {

// Label name/value pairs of one series, e.g. {{"vote", "yes"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count. Thread-safe and lock-free.
class Counter final {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Counts of observations per bucket (upper bounds fixed at creation), with
// their sum. Thread-safe and lock-free.
class Histogram final {
 public:
  // `bounds`: strictly increasing, finite; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  void Observe(absl::Duration duration) { Observe(absl::ToDoubleSeconds(duration)); }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bucket bounds in seconds from 100us to 10s, for RPC and commit latency.
std::vector<double> LatencyBuckets();
// Bucket bounds in seconds from 50us to 5s, for fsync times.
std::vector<double> SyncBuckets();

// Thread-safe. Metrics are registered once (at start-up) and live as long
// as the registry; the returned pointers stay valid until it is destroyed.
// A name (or a series of one name: same labels) registered twice, a name
// registered with two types, or an invalid name is a programming error and
// fails with a FATAL log line naming it.
class MetricsRegistry final {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter* AddCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, const MetricLabels& labels = {});
  // `value` is called at every Render, on the rendering thread, with the
  // registry's lock held: it must be quick and must not call the registry.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> value,
                const MetricLabels& labels = {});
  // A counter kept elsewhere (e.g. in the protocol engine), read like a
  // gauge callback.
  void AddCounterFunction(const std::string& name, const std::string& help,
                          std::function<double()> value, const MetricLabels& labels = {});

  // Called at the start of every Render, before any function above, with
  // the same lock held: e.g. to take one snapshot that several gauges read.
  void AddRenderHook(std::function<void()> hook);

  // Every metric, sorted by name, in the text exposition format.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> function;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
  };
  static const char* TypeName(Type type);
  Series* AddSeries(const std::string& name, const std::string& help, Type type,
                    const MetricLabels& labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> render_hooks_ ABSL_GUARDED_BY(mu_);
};

// Exposed for tests: the format's escaping and number rules.
namespace metrics_internal {
std::string EscapeLabelValue(const std::string& value);  // \\, \", \n
std::string EscapeHelp(const std::string& help);         // \\, \n
std::string FormatValue(double value);                   // shortest exact; +Inf, -Inf, NaN
bool IsValidMetricName(const std::string& name);
bool IsValidLabelName(const std::string& name);
}  // namespace metrics_internal

}  // namespace txcoord

#endif  // TXCOORD_COMMON_METRICS_H_
