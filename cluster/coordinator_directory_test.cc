#include "cluster/coordinator_directory.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::HasSubstr;

NodeRecord Coordinator(const std::string& id, int64_t weight = 1, bool draining = false,
                       const std::string& service = "txcoord") {
  NodeRecord record;
  record.node_id = id;
  record.role = kCoordinatorRole;
  record.service = service;
  record.endpoint = absl::StrCat(id, ".example:7070");
  record.weight = weight;
  record.draining = draining;
  return record;
}

class CoordinatorDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Put(Coordinator("c1"));
    Put(Coordinator("c2"));
    Put(Coordinator("c3"));
    Put(Coordinator("x1", 1, false, "other"));
    DiscoveryOptions options;
    options.prefix = "/t";
    discovery_ = std::make_unique<Discovery>(&etcd_, &scheduler_, options);
    ASSERT_TRUE(discovery_->Start().ok());
  }

  void Put(const NodeRecord& record) {
    ASSERT_TRUE(
        etcd_.Put(NodeKey("/t", record.role, record.service, record.node_id), record.ToJson())
            .ok());
  }
  void Deliver() { scheduler_.Advance(absl::ZeroDuration()); }

  std::string Begins(CoordinatorDirectory& directory, int n,
                     const std::vector<std::string>& exclude = {}) {
    std::string picked;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<CoordinatorChoice> choice = directory.PickForBegin(exclude);
      EXPECT_TRUE(choice.ok()) << choice.status();
      if (!choice.ok()) break;
      EXPECT_EQ(choice->endpoint, choice->node_id + ".example:7070");
      picked += choice->node_id;
    }
    return picked;
  }

  FakeScheduler scheduler_;
  MemoryEtcd etcd_{&scheduler_};
  std::unique_ptr<Discovery> discovery_;
};

TEST_F(CoordinatorDirectoryTest, BeginsGoRoundTheServingCoordinatorsOfTheService) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kRoundRobin);
  EXPECT_EQ(Begins(directory, 6), "c1c2c3c1c2c3");
  Put(Coordinator("c2", 1, /*draining=*/true));
  Deliver();
  EXPECT_EQ(Begins(directory, 4), "c1c3c1c3");
}

TEST_F(CoordinatorDirectoryTest, BeginsFollowTheRegisteredWeights) {
  Put(Coordinator("c1", 1));
  Put(Coordinator("c2", 3));
  Put(Coordinator("c3", 6));
  Deliver();
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kWeighted);
  std::map<std::string, int> counts;
  for (int i = 0; i < 1000; ++i) ++counts[directory.PickForBegin()->node_id];
  EXPECT_EQ(counts["c1"], 100);
  EXPECT_EQ(counts["c2"], 300);
  EXPECT_EQ(counts["c3"], 600);
}

TEST_F(CoordinatorDirectoryTest, ExcludedCoordinatorsAreSkipped) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kRandom);
  const std::string picked = Begins(directory, 200, {"c1", "nobody"});
  EXPECT_EQ(picked.find("c1"), std::string::npos);
  EXPECT_NE(picked.find("c2"), std::string::npos);
  EXPECT_NE(picked.find("c3"), std::string::npos);
}

TEST_F(CoordinatorDirectoryTest, AllExcludedIsUnavailableNamingThem) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kRoundRobin);
  absl::StatusOr<CoordinatorChoice> choice = directory.PickForBegin({"c3", "c1", "c2"});
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(choice.status().message(), HasSubstr("service \"txcoord\""));
  EXPECT_THAT(choice.status().message(), HasSubstr("(c1, c2, c3)"));
}

TEST_F(CoordinatorDirectoryTest, NoCoordinatorOfTheServiceSaysWhereItLooked) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "payments", BalancePolicy::kRoundRobin);
  absl::StatusOr<CoordinatorChoice> choice = directory.PickForBegin();
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(choice.status().message(),
              HasSubstr("no coordinator of service \"payments\" registered under "
                        "/t/nodes/coordinator/payments/ in etcd in memory"));
}

TEST_F(CoordinatorDirectoryTest, CallsForATxidGoToItsOwnerWhereverItIsNow) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kRoundRobin);
  absl::StatusOr<CoordinatorChoice> owner = directory.Owner("c2.7.15");
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ(owner->node_id, "c2");
  EXPECT_EQ(owner->endpoint, "c2.example:7070");
  // Restarted elsewhere: found again through its record.
  NodeRecord moved = Coordinator("c2");
  moved.endpoint = "10.0.0.9:7171";
  Put(moved);
  Deliver();
  EXPECT_EQ(directory.Owner("c2.7.16")->endpoint, "10.0.0.9:7171");
  // Draining: no new Begins, but it still answers for its txids.
  moved.draining = true;
  Put(moved);
  Deliver();
  EXPECT_EQ(directory.Owner("c2.7.16")->endpoint, "10.0.0.9:7171");
  EXPECT_EQ(Begins(directory, 2), "c1c3");
  // A coordinator of another service owns its own txids too.
  EXPECT_EQ(directory.Owner("x1.1.1")->node_id, "x1");
}

TEST_F(CoordinatorDirectoryTest, UnknownOwnerIsNotFoundAndMalformedTxidIsInvalid) {
  RegistryCoordinatorDirectory directory(discovery_.get(), "txcoord", BalancePolicy::kRoundRobin);
  absl::StatusOr<CoordinatorChoice> owner = directory.Owner("c9.1.5");
  EXPECT_EQ(owner.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(owner.status().message(), HasSubstr("txid c9.1.5"));
  EXPECT_THAT(owner.status().message(), HasSubstr("coordinator \"c9\" is not registered"));
  EXPECT_EQ(directory.Owner("not a txid").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory.Owner("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StaticCoordinatorDirectoryTest, OneCoordinatorOwnsEverything) {
  StaticCoordinatorDirectory static_directory("127.0.0.1:7070");
  CoordinatorDirectory& directory = static_directory;
  EXPECT_EQ(directory.PickForBegin()->endpoint, "127.0.0.1:7070");
  EXPECT_EQ(directory.Owner("c9.1.5")->endpoint, "127.0.0.1:7070");
}

}  // namespace
}  // namespace txcoord::cluster
