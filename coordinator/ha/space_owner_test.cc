#include "coordinator/ha/space_owner.h"

#include <optional>
#include <string>

#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator::ha {
namespace {

using ::testing::HasSubstr;

class SpaceOwnerTest : public ::testing::Test {
 protected:
  // Takes the space for `self` under a new lease; nullopt if held.
  std::optional<Ownership> Take(const std::string& self, std::string* holder = nullptr) {
    std::string held_by;
    absl::StatusOr<int64_t> lease = etcd_.GrantLease(kTtl);
    EXPECT_TRUE(lease.ok()) << lease.status();
    absl::StatusOr<std::optional<Ownership>> taken =
        TryTakeSpace(&etcd_, keys_, self, *lease, &held_by);
    EXPECT_TRUE(taken.ok()) << taken.status();
    if (holder != nullptr) *holder = held_by;
    return taken.ok() ? *taken : std::nullopt;
  }
  void AdvanceBy(absl::Duration total) {
    for (absl::Duration t; t < total; t += absl::Milliseconds(100)) {
      scheduler_.Advance(absl::Milliseconds(100));
    }
  }

  static constexpr absl::Duration kTtl = absl::Seconds(3);
  FakeScheduler scheduler_;
  cluster::MemoryEtcd etcd_{&scheduler_};
  const SpaceKeys keys_ = SpaceKeys::For("/t", "c1");
};

TEST_F(SpaceOwnerTest, KeysLiveUnderTheSpace) {
  EXPECT_EQ(keys_.owner, "/t/spaces/c1/owner");
  EXPECT_EQ(keys_.epoch, "/t/spaces/c1/epoch");
  EXPECT_EQ(keys_.log, "/t/spaces/c1/log/");
}

TEST_F(SpaceOwnerTest, OneProcessAtATimeTakesASpaceAndEachOwnerGetsANewEpoch) {
  std::optional<Ownership> first = Take("a");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->epoch, 1u);
  std::string holder;
  EXPECT_FALSE(Take("b", &holder).has_value());
  EXPECT_EQ(holder, "a");

  // a's lease lapses (no keep-alive): the key goes, b takes the space.
  AdvanceBy(kTtl + absl::Seconds(1));
  std::optional<Ownership> second = Take("b");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->epoch, 2u);
  EXPECT_NE(second->fence, first->fence);
  EXPECT_EQ(etcd_.Get(keys_.epoch)->kvs.at(0).value, "2");

  // a's fence no longer holds; b's does.
  EXPECT_FALSE(etcd_.Txn(first->Guard(), {})->succeeded);
  EXPECT_TRUE(etcd_.Txn(second->Guard(), {})->succeeded);
}

// etcd applied the take but its answer was lost (the client heard
// UNAVAILABLE, or sent it again and the copy's comparison failed): the next
// attempt under the same lease finds the space its own.
TEST_F(SpaceOwnerTest, ATakeWhoseAnswerWasLostIsFoundByTheNextAttempt) {
  absl::StatusOr<int64_t> lease = etcd_.GrantLease(kTtl);
  ASSERT_TRUE(lease.ok());
  std::string holder;
  absl::StatusOr<std::optional<Ownership>> lost = TryTakeSpace(&etcd_, keys_, "a", *lease, &holder);
  ASSERT_TRUE(lost.ok() && lost->has_value());

  absl::StatusOr<std::optional<Ownership>> again =
      TryTakeSpace(&etcd_, keys_, "a", *lease, &holder);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_value()) << "held by " << holder;
  EXPECT_EQ((*again)->fence, (*lost)->fence);
  EXPECT_EQ((*again)->epoch, 1u);
  EXPECT_EQ((*again)->lease, *lease);
  EXPECT_TRUE(etcd_.Txn((*again)->Guard(), {})->succeeded);
  EXPECT_EQ(etcd_.Get(keys_.epoch)->kvs.at(0).value, "1");  // not advanced twice
}

// The same name under another lease is another process (a restart): it
// waits for the old lease to end like anyone else.
TEST_F(SpaceOwnerTest, TheSameNameUnderAnotherLeaseDoesNotOwnTheSpace) {
  ASSERT_TRUE(Take("a").has_value());
  std::string holder;
  EXPECT_FALSE(Take("a", &holder).has_value());
  EXPECT_EQ(holder, "a");
}

TEST_F(SpaceOwnerTest, CampaignRoundFindsItsOwnLostTakeAndKeepsItsLeaseAlive) {
  CampaignOptions options;
  options.keys = keys_;
  options.self = "a";
  options.ttl = kTtl;
  int64_t lease = 0;
  std::string holder;
  absl::StatusOr<std::optional<Ownership>> first = CampaignRound(&etcd_, options, &lease, &holder);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_NE(lease, 0);
  AdvanceBy(kTtl / 2);
  const int64_t kept = lease;
  absl::StatusOr<std::optional<Ownership>> second = CampaignRound(&etcd_, options, &lease, &holder);
  ASSERT_TRUE(second.ok() && second->has_value()) << "held by " << holder;
  EXPECT_EQ(lease, kept);
  EXPECT_EQ((*second)->fence, (*first)->fence);
  AdvanceBy(kTtl / 2 + absl::Seconds(1));  // renewed by the second round: still held
  EXPECT_TRUE(etcd_.Txn((*second)->Guard(), {})->succeeded);
}

TEST_F(SpaceOwnerTest, AnEpochThatIsNotANumberIsDataLoss) {
  ASSERT_TRUE(etcd_.Put(keys_.epoch, "seven").ok());
  std::string holder;
  absl::StatusOr<std::optional<Ownership>> taken = TryTakeSpace(&etcd_, keys_, "a", 0, &holder);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(taken.status().message(), HasSubstr("/t/spaces/c1/epoch"));
}

TEST_F(SpaceOwnerTest, TheKeeperHoldsTheSpaceAndReportsItsLossOnceEtcdRefusesTheFence) {
  std::optional<Ownership> mine = Take("a");
  ASSERT_TRUE(mine.has_value());
  int lost = 0;
  std::string why;
  MetricsRegistry metrics;
  OwnershipKeeper keeper(&etcd_, &scheduler_, *mine, KeeperOptions{kTtl, absl::Milliseconds(100)},
                         [&](const absl::Status& status) {
                           ++lost;
                           why = std::string(status.message());
                         });
  keeper.AddMetrics(&metrics);
  AdvanceBy(absl::Seconds(20));
  EXPECT_EQ(lost, 0);
  EXPECT_FALSE(Take("b").has_value()) << "renewed: still held";

  // Paused past its lease (etcd unreachable to it): b takes over.
  etcd_.SetAvailable(false);
  AdvanceBy(kTtl + absl::Seconds(1));
  etcd_.SetAvailable(true);
  ASSERT_TRUE(Take("b").has_value());
  EXPECT_EQ(lost, 0) << "an unreachable etcd alone is not a loss";
  AdvanceBy(absl::Seconds(2));
  EXPECT_EQ(lost, 1);
  EXPECT_THAT(why, HasSubstr("etcd refused a write fenced on revision"));
  EXPECT_THAT(why, HasSubstr("held now by b"));
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_ha_owner 0"));
  EXPECT_THAT(metrics.Render(), HasSubstr("txcoord_ha_fenced_writes_total 1"));
  AdvanceBy(absl::Seconds(10));
  EXPECT_EQ(lost, 1) << "reported once";
}

TEST_F(SpaceOwnerTest, ReleaseFreesTheSpaceAtOnce) {
  std::optional<Ownership> mine = Take("a");
  ASSERT_TRUE(mine.has_value());
  OwnershipKeeper keeper(&etcd_, &scheduler_, *mine, KeeperOptions{kTtl, absl::Milliseconds(100)},
                         [](const absl::Status&) {});
  keeper.Release();
  std::optional<Ownership> next = Take("b");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->epoch, 2u);
}

}  // namespace
}  // namespace txcoord::coordinator::ha
