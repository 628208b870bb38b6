#include "cluster/discovery.h"

#include <string>

#include "cluster/coordinator_directory.h"
#include "cluster/memory_etcd.h"
#include "cluster/registrar.h"
#include "common/fake_scheduler.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

NodeRecord Coordinator(const std::string& id, int64_t weight = 1) {
  NodeRecord record;
  record.node_id = id;
  record.role = kCoordinatorRole;
  record.service = kDefaultCoordinatorService;
  record.endpoint = "127.0.0.1:" + std::to_string(7000 + id.back());
  record.weight = weight;
  return record;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  std::unique_ptr<Registrar> Register(NodeRecord record) {
    RegistrarOptions options;
    options.ttl = absl::Seconds(2);
    auto registrar = std::make_unique<Registrar>(&etcd_, &scheduler_, std::move(record), options);
    EXPECT_TRUE(registrar->Start().ok());
    return registrar;
  }
  size_t Serving(Discovery& discovery) {
    absl::StatusOr<std::vector<NodeRecord>> found =
        discovery.Coordinators(kDefaultCoordinatorService);
    return found.ok() ? found->size() : 0;
  }

  FakeScheduler scheduler_;
  MemoryEtcd etcd_{&scheduler_};
};

TEST_F(DiscoveryTest, FollowsRegistrationsDrainsAndExpiries) {
  // c1 registers by hand and never renews: a process that crashed.
  const int64_t lease = *etcd_.GrantLease(absl::Seconds(2));
  ASSERT_TRUE(etcd_
                  .Put(NodeKey(kDefaultPrefix, kCoordinatorRole, kDefaultCoordinatorService, "c1"),
                       Coordinator("c1").ToJson(), lease)
                  .ok());
  Discovery discovery(&etcd_, &scheduler_);
  ASSERT_TRUE(discovery.Start().ok());
  EXPECT_EQ(Serving(discovery), 1u);
  auto c2 = Register(Coordinator("c2"));
  auto c3 = Register(Coordinator("c3"));
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(Serving(discovery), 3u);
  ASSERT_TRUE(c2->SetDraining(true).ok());
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(Serving(discovery), 2u) << "a draining coordinator is no candidate for Begin";
  EXPECT_TRUE(discovery.Coordinator("c2").ok()) << "but it still answers for its txids";
  scheduler_.Advance(absl::Seconds(3));  // c1's lease expires
  EXPECT_EQ(discovery.Coordinator("c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Serving(discovery), 1u);
  c3->Stop();  // a clean shutdown: gone at once
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_EQ(discovery.Coordinator("c3").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiscoveryTest, AnEmptyRegistryNamesWhereItLooked) {
  Discovery discovery(&etcd_, &scheduler_);
  ASSERT_TRUE(discovery.Start().ok());
  absl::StatusOr<std::vector<NodeRecord>> none = discovery.Coordinators("txcoord");
  ASSERT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("/txcoord/nodes/coordinator/txcoord/"), std::string::npos)
      << none.status();
  EXPECT_NE(none.status().message().find("etcd in memory"), std::string::npos) << none.status();
  EXPECT_EQ(discovery.Agents("orders").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DiscoveryTest, UnreachableAtStartIsAnError) {
  etcd_.SetAvailable(false);
  Discovery discovery(&etcd_, &scheduler_);
  absl::Status started = discovery.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(started.message().find("/txcoord/nodes/"), std::string::npos) << started;
}

TEST_F(DiscoveryTest, KeepsTheViewThroughAnOutageAndResyncsAfter) {
  auto c1 = Register(Coordinator("c1"));
  auto c2 = Register(Coordinator("c2"));
  Discovery discovery(&etcd_, &scheduler_);
  ASSERT_TRUE(discovery.Start().ok());
  EXPECT_TRUE(discovery.watching());
  etcd_.SetAvailable(false);
  scheduler_.Advance(absl::Milliseconds(1));
  EXPECT_FALSE(discovery.watching());
  EXPECT_EQ(Serving(discovery), 2u) << "the cached view must keep serving";
  scheduler_.Advance(absl::Seconds(3));
  // While etcd is away, the registrars' leases run out (MemoryEtcd keeps
  // counting); when it is back, c2 is stopped before the view is read again.
  etcd_.SetAvailable(true);
  c2->Stop();
  scheduler_.Advance(absl::Seconds(10));  // backoff, resync, registrar re-registers c1
  EXPECT_TRUE(discovery.watching());
  EXPECT_EQ(Serving(discovery), 1u);
  EXPECT_TRUE(discovery.Coordinator("c1").ok());
  EXPECT_EQ(discovery.Coordinator("c2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiscoveryTest, ABadRecordIsSkipped) {
  ASSERT_TRUE(etcd_.Put("/txcoord/nodes/coordinator/txcoord/bad", "{").ok());
  auto c1 = Register(Coordinator("c1"));
  Discovery discovery(&etcd_, &scheduler_);
  ASSERT_TRUE(discovery.Start().ok());
  EXPECT_EQ(discovery.All().size(), 1u);
}

TEST_F(DiscoveryTest, DirectoryBalancesBeginsAndRoutesByTxidOwner) {
  auto c1 = Register(Coordinator("c1", 1));
  auto c2 = Register(Coordinator("c2", 3));
  Discovery discovery(&etcd_, &scheduler_);
  ASSERT_TRUE(discovery.Start().ok());
  RegistryCoordinatorDirectory directory(&discovery, kDefaultCoordinatorService,
                                         BalancePolicy::kWeighted);
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(directory.PickForBegin().ok());
  EXPECT_EQ(directory.picks("c1"), 100);
  EXPECT_EQ(directory.picks("c2"), 300);
  absl::StatusOr<CoordinatorChoice> excluded = directory.PickForBegin({"c2"});
  ASSERT_TRUE(excluded.ok());
  EXPECT_EQ(excluded->node_id, "c1");
  EXPECT_EQ(directory.PickForBegin({"c1", "c2"}).status().code(), absl::StatusCode::kUnavailable);

  absl::StatusOr<CoordinatorChoice> owner = directory.Owner("c2.4.17");
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ(owner->endpoint, Coordinator("c2").endpoint);
  EXPECT_EQ(directory.Owner("c9.1.1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(directory.Owner("no-txid").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace txcoord::cluster
