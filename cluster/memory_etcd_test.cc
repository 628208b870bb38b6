#include "cluster/memory_etcd.h"

#include <string>
#include <vector>

#include "cluster/etcd_txn_test_util.h"
#include "common/fake_scheduler.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

class MemoryEtcdTest : public ::testing::Test {
 protected:
  FakeScheduler scheduler_;
  MemoryEtcd etcd_{&scheduler_};
};

TEST_F(MemoryEtcdTest, PutAndGetKeepRevisionsAndHistory) {
  ASSERT_EQ(*etcd_.Put("/a/1", "x"), 2);
  ASSERT_EQ(*etcd_.Put("/a/2", "y"), 3);
  ASSERT_EQ(*etcd_.Put("/a/1", "z"), 4);
  ASSERT_EQ(*etcd_.Put("/b", "w"), 5);
  absl::StatusOr<RangeResult> all = etcd_.GetPrefix("/a/");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 2u);
  EXPECT_EQ(all->kvs[0].value, "z");
  EXPECT_EQ(all->kvs[0].create_revision, 2);
  EXPECT_EQ(all->kvs[0].mod_revision, 4);
  EXPECT_EQ(all->kvs[0].version, 2);
  EXPECT_EQ(all->revision, 5);
  EXPECT_EQ(etcd_.Get("/a/1", 3)->kvs.at(0).value, "x");
  EXPECT_TRUE(etcd_.Get("/a/1", 1)->kvs.empty());
  ASSERT_EQ(*etcd_.Delete("/a/1"), 1);
  EXPECT_EQ(*etcd_.Delete("/a/1"), 0);
  EXPECT_TRUE(etcd_.Get("/a/1")->kvs.empty());
  EXPECT_EQ(etcd_.Get("/a/1", 5)->kvs.at(0).value, "z");
  ASSERT_TRUE(etcd_.Compact(5).ok());
  EXPECT_EQ(etcd_.Get("/a/1", 3).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(MemoryEtcdTest, PutIfComparesModRevision) {
  EXPECT_TRUE(*etcd_.PutIf("/k", "1", 0));
  EXPECT_FALSE(*etcd_.PutIf("/k", "2", 0));
  const int64_t rev = etcd_.Get("/k")->kvs.at(0).mod_revision;
  EXPECT_FALSE(*etcd_.PutIf("/k", "3", rev + 1));
  EXPECT_TRUE(*etcd_.PutIf("/k", "4", rev));
  EXPECT_EQ(etcd_.Get("/k")->kvs.at(0).value, "4");
}

TEST_F(MemoryEtcdTest, TxnWritesAllAtOneRevisionOnlyWhenItsComparisonsHold) {
  testing::ExpectTxnSemantics(&etcd_, "/txn/");
}

TEST_F(MemoryEtcdTest, TxnThatPutsAKeyTwiceOrInsideItsOwnDeleteIsRefused) {
  testing::ExpectTxnRefusesDuplicateKeys(&etcd_, "/txn/");
}

TEST_F(MemoryEtcdTest, SpaceAlarmRefusesPutsButNotReadsDeletesOrKeepAlives) {
  ASSERT_TRUE(etcd_.Put("/k", "1").ok());
  absl::StatusOr<int64_t> lease = etcd_.GrantLease(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  etcd_.SetSpaceExceeded(true);
  EXPECT_EQ(etcd_.Put("/k", "2").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(etcd_.PutIf("/j", "2", 0).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(etcd_.Txn({}, {testing::PutOp("/j", "2")}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(etcd_.GrantLease(absl::Seconds(5)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(etcd_.KeepAlive(*lease).ok());
  EXPECT_EQ(etcd_.Get("/k")->kvs.at(0).value, "1");
  absl::StatusOr<TxnResult> guarded_probe =
      etcd_.Txn({{"/k", TxnCompare::Target::kCreateRevision, 2}}, {});
  ASSERT_TRUE(guarded_probe.ok());
  EXPECT_TRUE(guarded_probe->succeeded);
  EXPECT_TRUE(etcd_.Txn({}, {TxnOp{TxnOp::Type::kDelete, "/k"}}).ok());
  etcd_.SetSpaceExceeded(false);
  EXPECT_TRUE(etcd_.Put("/k", "3").ok());
}

TEST_F(MemoryEtcdTest, LeaseExpiryDeletesItsKeysAndKeepAliveDefersIt) {
  const int64_t lease = *etcd_.GrantLease(absl::Milliseconds(1500));  // rounds up to 2s
  ASSERT_TRUE(etcd_.Put("/node", "up", lease).ok());
  scheduler_.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(*etcd_.KeepAlive(lease), absl::Seconds(2));
  scheduler_.Advance(absl::Milliseconds(1900));
  EXPECT_EQ(etcd_.Get("/node")->kvs.size(), 1u);
  scheduler_.Advance(absl::Milliseconds(200));
  EXPECT_TRUE(etcd_.Get("/node")->kvs.empty());
  EXPECT_EQ(etcd_.KeepAlive(lease).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(etcd_.Put("/node", "up", lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MemoryEtcdTest, RevokeDeletesAtOnce) {
  const int64_t lease = *etcd_.GrantLease(absl::Seconds(10));
  ASSERT_TRUE(etcd_.Put("/node", "up", lease).ok());
  ASSERT_TRUE(etcd_.RevokeLease(lease).ok());
  EXPECT_TRUE(etcd_.Get("/node")->kvs.empty());
  EXPECT_TRUE(etcd_.RevokeLease(lease).ok());
}

TEST_F(MemoryEtcdTest, WatchReplaysFromARevisionThenFollowsInOrder) {
  ASSERT_TRUE(etcd_.Put("/w/a", "1").ok());  // revision 2
  ASSERT_TRUE(etcd_.Put("/x", "1").ok());    // 3: not under the prefix
  std::vector<std::string> seen;
  int64_t last = 0;
  auto watch = etcd_.WatchPrefix(
      "/w/", 2,
      [&](const std::vector<WatchEvent>& events, int64_t revision) {
        for (const WatchEvent& e : events) {
          seen.push_back((e.type == WatchEvent::Type::kPut ? "put " : "del ") + e.kv.key);
        }
        last = revision;
      },
      [&](const absl::Status&) { seen.push_back("error"); });
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(etcd_.Put("/w/b", "2").ok());
  ASSERT_TRUE(etcd_.Delete("/w/a").ok());
  EXPECT_TRUE(seen.empty());  // never inside the call
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(seen, (std::vector<std::string>{"put /w/a", "put /w/b", "del /w/a"}));
  EXPECT_EQ(last, 5);
  watch->reset();
  ASSERT_TRUE(etcd_.Put("/w/c", "3").ok());
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(MemoryEtcdTest, OutageFailsCallsAndEndsWatches) {
  absl::Status error;
  auto watch = etcd_.WatchPrefix(
      "/", 0, [](const std::vector<WatchEvent>&, int64_t) {},
      [&](const absl::Status& s) { error = s; });
  ASSERT_TRUE(watch.ok());
  etcd_.SetAvailable(false);
  EXPECT_EQ(etcd_.Put("/k", "v").status().code(), absl::StatusCode::kUnavailable);
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(error.code(), absl::StatusCode::kUnavailable);
  etcd_.SetAvailable(true);
  EXPECT_TRUE(etcd_.Put("/k", "v").ok());
}

TEST_F(MemoryEtcdTest, WatchOfACompactedRevisionIsOutOfRange) {
  ASSERT_TRUE(etcd_.Put("/k", "1").ok());
  ASSERT_TRUE(etcd_.Put("/k", "2").ok());
  ASSERT_TRUE(etcd_.Compact(3).ok());
  absl::Status error;
  auto watch = etcd_.WatchPrefix(
      "/", 2, [](const std::vector<WatchEvent>&, int64_t) {},
      [&](const absl::Status& s) { error = s; });
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(error.code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace txcoord::cluster
