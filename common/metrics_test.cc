#include "common/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistryTest, CounterRendersHelpTypeAndValue) {
  MetricsRegistry registry;
  Counter* commits = registry.AddCounter("txcoord_commits_total", "Transactions committed.");
  commits->Increment();
  commits->Increment(2);
  EXPECT_EQ(registry.Render(),
            "# HELP txcoord_commits_total Transactions committed.\n"
            "# TYPE txcoord_commits_total counter\n"
            "txcoord_commits_total 3\n");
}

TEST(MetricsRegistryTest, LabelledSeriesShareOneHeader) {
  MetricsRegistry registry;
  registry.AddCounter("votes_total", "Votes.", {{"vote", "yes"}})->Increment(4);
  registry.AddCounter("votes_total", "Votes.", {{"vote", "no"}});
  EXPECT_EQ(registry.Render(),
            "# HELP votes_total Votes.\n"
            "# TYPE votes_total counter\n"
            "votes_total{vote=\"yes\"} 4\n"
            "votes_total{vote=\"no\"} 0\n");
}

TEST(MetricsRegistryTest, FamiliesAreSortedByName) {
  MetricsRegistry registry;
  registry.AddCounter("b_total", "B.");
  registry.AddCounter("a_total", "A.");
  const std::string text = registry.Render();
  EXPECT_LT(text.find("a_total"), text.find("b_total"));
}

TEST(MetricsRegistryTest, GaugeCallsItsFunctionAtEveryRender) {
  MetricsRegistry registry;
  double open = 2;
  registry.AddGauge("open_transactions", "Open.", [&] { return open; });
  EXPECT_THAT(registry.Render(),
              HasSubstr("# TYPE open_transactions gauge\nopen_transactions 2\n"));
  open = 0.5;
  EXPECT_THAT(registry.Render(), HasSubstr("open_transactions 0.5\n"));
}

TEST(MetricsRegistryTest, RenderHooksRunBeforeGauges) {
  MetricsRegistry registry;
  int snapshot = 0;
  int taken = 0;
  registry.AddRenderHook([&] { snapshot = ++taken * 10; });
  registry.AddGauge("a", "A.", [&] { return double(snapshot); });
  registry.AddGauge("b", "B.", [&] { return double(snapshot + 1); });
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("\na 10\n"));
  EXPECT_THAT(text, HasSubstr("\nb 11\n"));
  EXPECT_EQ(taken, 1);
}

TEST(MetricsRegistryTest, CounterFunctionIsTypedCounter) {
  MetricsRegistry registry;
  registry.AddCounterFunction("aborts_total", "Aborts.", [] { return 7.0; });
  EXPECT_THAT(registry.Render(), HasSubstr("# TYPE aborts_total counter\naborts_total 7\n"));
}

TEST(MetricsRegistryTest, HistogramRendersCumulativeBucketsSumAndCount) {
  MetricsRegistry registry;
  Histogram* latency = registry.AddHistogram("latency_seconds", "Latency.", {0.125, 1});
  latency->Observe(0.0625);
  latency->Observe(0.125);  // a bound is inclusive: le="0.125"
  latency->Observe(0.5);
  latency->Observe(7);
  EXPECT_EQ(registry.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.125\"} 2\n"
            "latency_seconds_bucket{le=\"1\"} 3\n"
            "latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "latency_seconds_sum 7.6875\n"
            "latency_seconds_count 4\n");
}

TEST(MetricsRegistryTest, HistogramLabelsComeBeforeLe) {
  MetricsRegistry registry;
  registry.AddHistogram("h_seconds", "H.", {1}, {{"op", "commit"}})->Observe(absl::Milliseconds(2));
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("h_seconds_bucket{op=\"commit\",le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_sum{op=\"commit\"} 0.002\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_count{op=\"commit\"} 1\n"));
}

TEST(MetricsRegistryTest, HistogramIgnoresNaN) {
  MetricsRegistry registry;
  Histogram* h = registry.AddHistogram("h", "H.", {1});
  h->Observe(std::nan(""));
  EXPECT_EQ(h->snapshot().count, 0u);
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry.AddCounter("c_total", "line one\nback\\slash", {{"reason", "say \"no\"\\\n"}});
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP c_total line one\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("c_total{reason=\"say \\\"no\\\"\\\\\\n\"} 0\n"));
}

TEST(MetricsRegistryTest, CountersAreSafeFromManyThreads) {
  MetricsRegistry registry;
  Counter* counter = registry.AddCounter("c_total", "C.");
  Histogram* histogram = registry.AddHistogram("h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter->Increment();
        histogram->Observe(0.5);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter->value(), 40000u);
  Histogram::Snapshot snapshot = histogram->snapshot();
  EXPECT_EQ(snapshot.count, 40000u);
  EXPECT_DOUBLE_EQ(snapshot.sum, 20000);
}

TEST(MetricsRegistryDeathTest, InvalidOrDuplicateRegistrationIsFatal) {
  EXPECT_DEATH(MetricsRegistry().AddCounter("bad-name", "x"), "not valid");
  EXPECT_DEATH(MetricsRegistry().AddCounter("c", "x", {{"le", "1"}}), "not valid");
  EXPECT_DEATH(
      {
        MetricsRegistry registry;
        registry.AddCounter("c", "x");
        registry.AddCounter("c", "x");
      },
      "registered twice");
  EXPECT_DEATH(
      {
        MetricsRegistry registry;
        registry.AddCounter("c", "x");
        registry.AddGauge("c", "x", [] { return 1.0; });
      },
      "registered as counter and as gauge");
}

TEST(MetricsFormatTest, ValuesAreShortestExactText) {
  using metrics_internal::FormatValue;
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.00025), "0.00025");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.00005), "0.00005");
  EXPECT_EQ(FormatValue(-2.5e-5), "-0.000025");
  EXPECT_EQ(FormatValue(1e-9), "1e-09");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsFormatTest, NamesFollowThePrometheusGrammar) {
  using metrics_internal::IsValidLabelName;
  using metrics_internal::IsValidMetricName;
  EXPECT_TRUE(IsValidMetricName("txcoord_commits_total"));
  EXPECT_TRUE(IsValidMetricName("ns:sub_1"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("vote"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(MetricsBucketsTest, DefaultBucketsIncrease) {
  for (const std::vector<double>& bounds : {LatencyBuckets(), SyncBuckets()}) {
    for (size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  }
  EXPECT_THAT(MetricsRegistry().Render(), Not(HasSubstr("#")));
}

}  // namespace
}  // namespace txcoord
