#include "cluster/history_compactor.h"

#include <string>

#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::HasSubstr;

TEST(HistoryCompactorTest, KeepsBetweenOneAndTwoIntervalsOfHistory) {
  FakeScheduler scheduler;
  MemoryEtcd etcd(&scheduler);
  MetricsRegistry metrics;
  HistoryCompactor compactor(&etcd, &scheduler, absl::Minutes(5));
  compactor.AddMetrics(&metrics);
  // A key rewritten all the time, as the decision log's keys are.
  auto write_for = [&](absl::Duration d) {
    for (absl::Duration t; t < d; t += absl::Seconds(10)) {
      ASSERT_TRUE(etcd.Put("/k", "v").ok());
      scheduler.Advance(absl::Seconds(10));
    }
  };
  write_for(absl::Minutes(5));
  const int64_t at_first_look = etcd.revision();
  write_for(absl::Minutes(5));
  EXPECT_EQ(compactor.compacted_revision(), at_first_look);
  EXPECT_EQ(etcd.Get("/k", at_first_look - 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(etcd.Get("/k", at_first_look).ok()) << "the last interval is kept";
  write_for(absl::Minutes(5));
  EXPECT_GT(compactor.compacted_revision(), at_first_look);
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_etcd_compactions_total 2"));
}

TEST(HistoryCompactorTest, ARevisionCompactedAlreadyIsNoFailureAndAnOutageIsRetried) {
  FakeScheduler scheduler;
  MemoryEtcd etcd(&scheduler);
  MetricsRegistry metrics;
  HistoryCompactor compactor(&etcd, &scheduler, absl::Minutes(1));
  compactor.AddMetrics(&metrics);
  ASSERT_TRUE(etcd.Put("/k", "v").ok());
  scheduler.Advance(absl::Minutes(1));  // reads the revision
  ASSERT_TRUE(etcd.Put("/k", "w").ok());
  ASSERT_TRUE(etcd.Compact(etcd.revision()).ok());  // someone else compacted further
  scheduler.Advance(absl::Minutes(1));
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_etcd_compaction_failures_total 0"));
  etcd.SetAvailable(false);
  scheduler.Advance(absl::Minutes(1));
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_etcd_compaction_failures_total 1"));
  etcd.SetAvailable(true);
  ASSERT_TRUE(etcd.Put("/k", "x").ok());
  scheduler.Advance(absl::Minutes(1));
  ASSERT_TRUE(etcd.Put("/k", "y").ok());
  scheduler.Advance(absl::Minutes(1));
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_etcd_compactions_total 1"));
}

}  // namespace
}  // namespace txcoord::cluster
