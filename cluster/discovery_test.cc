#include "cluster/discovery.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cluster/faulty_etcd_test_util.h"
#include "cluster/memory_etcd.h"
#include "cluster/registrar.h"
#include "common/fake_scheduler.h"
#include "common/metrics.h"
#include "common/timer_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

NodeRecord Node(const std::string& id, const std::string& role = kCoordinatorRole,
                const std::string& service = "txcoord", bool draining = false) {
  NodeRecord record;
  record.node_id = id;
  record.role = role;
  record.service = service;
  record.endpoint = absl::StrCat(id, ".example:7070");
  record.draining = draining;
  return record;
}

std::string KeyOf(const NodeRecord& record) {
  return NodeKey("/t", record.role, record.service, record.node_id);
}

std::vector<std::string> Ids(const std::vector<NodeRecord>& records) {
  std::vector<std::string> ids;
  for (const NodeRecord& record : records) ids.push_back(record.node_id);
  return ids;
}

double Metric(const MetricsRegistry& registry, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(registry.Render(), '\n')) {
    if (!absl::StartsWith(line, name + " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(name.size() + 1), &value)) return value;
  }
  return -1;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  DiscoveryOptions Options() {
    DiscoveryOptions options;
    options.prefix = "/t";
    options.min_backoff = absl::Milliseconds(100);
    options.max_backoff = absl::Seconds(1);
    return options;
  }

  void MakeDiscovery() {
    discovery_ = std::make_unique<Discovery>(&etcd_, &scheduler_, Options());
    discovery_->AddMetrics(&metrics_);
    discovery_->OnChange([this] { ++changes_; });
  }

  void StartDiscovery() {
    MakeDiscovery();
    absl::Status status = discovery_->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  // Puts `record` with no lease (or under `lease`).
  void Put(const NodeRecord& record, int64_t lease = 0) {
    ASSERT_TRUE(memory_.Put(KeyOf(record), record.ToJson(), lease).ok());
  }
  int64_t PutWithLease(const NodeRecord& record, absl::Duration ttl) {
    absl::StatusOr<int64_t> lease = memory_.GrantLease(ttl);
    EXPECT_TRUE(lease.ok());
    Put(record, *lease);
    return *lease;
  }

  // Lets the watch deliver what etcd has.
  void Deliver() { scheduler_.Advance(absl::ZeroDuration()); }
  void AdvanceBy(absl::Duration total, absl::Duration step = absl::Milliseconds(50)) {
    for (absl::Duration t; t < total; t += step) scheduler_.Advance(step);
  }

  std::vector<std::string> Serving(const std::string& service = "txcoord") {
    absl::StatusOr<std::vector<NodeRecord>> coordinators = discovery_->Coordinators(service);
    if (!coordinators.ok()) return {};
    return Ids(*coordinators);
  }

  FakeScheduler scheduler_;
  MemoryEtcd memory_{&scheduler_};
  testing::FaultyEtcd etcd_{&memory_};
  MetricsRegistry metrics_;
  int changes_ = 0;
  std::unique_ptr<Discovery> discovery_;
};

TEST_F(DiscoveryTest, StartReadsEveryRecord) {
  Put(Node("c2"));
  Put(Node("c1"));
  Put(Node("c3", kCoordinatorRole, "txcoord", /*draining=*/true));
  Put(Node("x1", kCoordinatorRole, "other"));
  Put(Node("orders", kAgentRole, "orders"));
  StartDiscovery();
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2"));  // sorted, c3 draining
  EXPECT_THAT(Serving("other"), ElementsAre("x1"));
  absl::StatusOr<std::vector<NodeRecord>> agents = discovery_->Agents("orders");
  ASSERT_TRUE(agents.ok());
  EXPECT_THAT(Ids(*agents), ElementsAre("orders"));
  EXPECT_EQ(agents->front().endpoint, "orders.example:7070");
  EXPECT_EQ(discovery_->All().size(), 5u);
  EXPECT_EQ(discovery_->revision(), memory_.revision());
  EXPECT_TRUE(discovery_->watching());
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_nodes"), 5);
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_watching"), 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_resyncs_total"), 0);
  EXPECT_EQ(discovery_->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DiscoveryTest, WatchFollowsRegistrationDrainAndLeaseExpiry) {
  const int64_t c1_lease = PutWithLease(Node("c1"), absl::Seconds(3));
  StartDiscovery();
  EXPECT_THAT(Serving(), ElementsAre("c1"));

  Put(Node("c2"));
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2"));
  EXPECT_EQ(changes_, 1);

  Put(Node("c2", kCoordinatorRole, "txcoord", /*draining=*/true));
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("c1"));
  // A draining coordinator still owns its txids.
  absl::StatusOr<NodeRecord> c2 = discovery_->Coordinator("c2");
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->draining);
  EXPECT_EQ(c2->endpoint, "c2.example:7070");

  // c1's lease is not renewed: etcd deletes its record.
  ASSERT_TRUE(memory_.KeepAlive(c1_lease).ok());
  AdvanceBy(absl::Seconds(4));
  EXPECT_EQ(discovery_->Coordinator("c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Serving(), IsEmpty());
  EXPECT_EQ(discovery_->All().size(), 1u);
  EXPECT_EQ(discovery_->revision(), memory_.revision());
  EXPECT_EQ(changes_, 3);
  EXPECT_TRUE(discovery_->watching());
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_nodes"), 1);
}

TEST_F(DiscoveryTest, LookupsThatFindNothingSayWhereTheyLooked) {
  StartDiscovery();
  const int64_t revision = memory_.revision();
  absl::StatusOr<std::vector<NodeRecord>> none = discovery_->Coordinators("txcoord");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(none.status().message(),
            absl::StrCat("no coordinator of service \"txcoord\" registered under "
                         "/t/nodes/coordinator/txcoord/ in etcd in memory (view at revision ",
                         revision, ", watching)"));

  Put(Node("c1", kCoordinatorRole, "txcoord", /*draining=*/true));
  Deliver();
  none = discovery_->Coordinators("txcoord");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(),
              HasSubstr("no serving coordinator of service \"txcoord\" (draining: c1)"));

  absl::StatusOr<NodeRecord> owner = discovery_->Coordinator("c9");
  EXPECT_EQ(owner.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(owner.status().message(),
              HasSubstr("coordinator \"c9\" is not registered under /t/nodes/coordinator/ in "
                        "etcd in memory (view at revision"));

  absl::StatusOr<std::vector<NodeRecord>> agents = discovery_->Agents("orders");
  EXPECT_EQ(agents.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(agents.status().message(),
              HasSubstr("no agent of service \"orders\" registered under /t/nodes/agent/orders/"));
}

TEST_F(DiscoveryTest, AServiceNameIsNotAPrefixOfAnother) {
  Put(Node("c1", kCoordinatorRole, "txcoord2"));
  StartDiscovery();
  EXPECT_EQ(discovery_->Coordinators("txcoord").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Serving("txcoord2"), ElementsAre("c1"));
}

TEST_F(DiscoveryTest, UnreachableAtStartIsAnErrorNamingThePrefixAndEtcd) {
  memory_.SetAvailable(false);
  MakeDiscovery();
  absl::Status status = discovery_->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("under /t/nodes/ in etcd in memory"));
  EXPECT_FALSE(discovery_->watching());
  EXPECT_EQ(scheduler_.pending(), 0u);  // nothing retried behind the caller's back
  memory_.SetAvailable(true);
  EXPECT_TRUE(discovery_->Start().ok());
}

TEST_F(DiscoveryTest, OutageKeepsTheLastViewInUse) {
  Put(Node("c1"));
  Put(Node("c2"));
  StartDiscovery();
  memory_.SetAvailable(false);
  Deliver();  // the watch ends
  EXPECT_FALSE(discovery_->watching());
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_watching"), 0);
  AdvanceBy(absl::Seconds(30));
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2"));
  EXPECT_TRUE(discovery_->Coordinator("c2").ok());
  EXPECT_THAT(discovery_->Coordinators("other").status().message(),
              HasSubstr("not watching: etcd unreachable, the view may be stale"));
  // Re-reads are backed off: capped at 1 s, jittered into [0.5 s, 1 s].
  const int calls = etcd_.calls.load();
  AdvanceBy(absl::Seconds(10));
  EXPECT_GE(etcd_.calls.load() - calls, 9);
  EXPECT_LE(etcd_.calls.load() - calls, 21);
}

TEST_F(DiscoveryTest, RecoveryReadsAgainAndSeesWhatChangedMeanwhile) {
  PutWithLease(Node("c1"), absl::Seconds(3));  // expires during the outage
  Put(Node("c2"));
  Put(Node("c3"));
  StartDiscovery();
  memory_.SetAvailable(false);
  AdvanceBy(absl::Seconds(5));
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2", "c3"));  // stale, but kept
  memory_.SetAvailable(true);
  // Before the next re-read: changes no watch sees.
  Put(Node("c4"));
  Put(Node("c2", kCoordinatorRole, "txcoord", /*draining=*/true));
  ASSERT_EQ(*memory_.Delete(KeyOf(Node("c3"))), 1);
  const int changes = changes_;
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  EXPECT_TRUE(discovery_->watching());
  EXPECT_THAT(Serving(), ElementsAre("c4"));
  EXPECT_EQ(discovery_->Coordinator("c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(discovery_->Coordinator("c3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(discovery_->Coordinator("c2")->draining);
  EXPECT_EQ(discovery_->revision(), memory_.revision());
  EXPECT_EQ(changes_, changes + 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_resyncs_total"), 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_watching"), 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_discovery_nodes"), 2);
  // And the new watch follows from there: nothing missed, nothing twice.
  Put(Node("c5"));
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("c4", "c5"));
  EXPECT_EQ(discovery_->revision(), memory_.revision());
}

TEST_F(DiscoveryTest, AWatchThatCannotBeOpenedAfterTheReadIsRetried) {
  Put(Node("c1"));
  StartDiscovery();
  memory_.SetAvailable(false);
  Deliver();
  memory_.SetAvailable(true);
  etcd_.fail_watch = true;
  Put(Node("c2"));
  AdvanceBy(absl::Seconds(2));
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2"));  // read, though not watched
  EXPECT_FALSE(discovery_->watching());
  etcd_.fail_watch = false;
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  EXPECT_TRUE(discovery_->watching());
  Put(Node("c3"));
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("c1", "c2", "c3"));
}

TEST_F(DiscoveryTest, RecordsThatDoNotParseAreSkippedAndLoggedOnce) {
  const std::string bad_key = "/t/nodes/coordinator/txcoord/bad";
  ASSERT_TRUE(memory_.Put(bad_key, "{not json").ok());
  // A valid record under a key that is not its own.
  ASSERT_TRUE(memory_.Put("/t/nodes/coordinator/txcoord/c9", Node("c1").ToJson()).ok());
  Put(Node("c2"));
  ::testing::internal::CaptureStderr();
  StartDiscovery();
  ASSERT_TRUE(memory_.Put(bad_key, "{\"still\": \"bad\"}").ok());
  Deliver();
  memory_.SetAvailable(false);  // and a re-read
  Deliver();
  memory_.SetAvailable(true);
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(Serving(), ElementsAre("c2"));
  EXPECT_EQ(discovery_->All().size(), 1u);
  EXPECT_EQ(discovery_->Coordinator("c1").status().code(), absl::StatusCode::kNotFound);
  size_t logged = 0;
  for (size_t at = log.find("skipping " + bad_key); at != std::string::npos;
       at = log.find("skipping " + bad_key, at + 1)) {
    ++logged;
  }
  EXPECT_EQ(logged, 1u) << log;
  EXPECT_THAT(log, HasSubstr("skipping /t/nodes/coordinator/txcoord/c9"));
  EXPECT_THAT(log, HasSubstr("belong under /t/nodes/coordinator/txcoord/c1"));
  // Fixed: it appears.
  ASSERT_TRUE(memory_.Put(bad_key, Node("bad").ToJson()).ok());
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("bad", "c2"));
  // A good record turned bad goes.
  ASSERT_TRUE(memory_.Put(KeyOf(Node("c2")), "[]").ok());
  Deliver();
  EXPECT_THAT(Serving(), ElementsAre("bad"));
}

TEST_F(DiscoveryTest, SeesARegistrarsRecordItsDrainAndItsStop) {
  RegistrarOptions options;
  options.prefix = "/t";
  Registrar registrar(&memory_, &scheduler_, Node("c1"), options);
  ASSERT_TRUE(registrar.Start().ok());
  StartDiscovery();
  EXPECT_THAT(Serving(), ElementsAre("c1"));
  ASSERT_TRUE(registrar.SetDraining(true).ok());
  Deliver();
  EXPECT_THAT(Serving(), IsEmpty());
  EXPECT_TRUE(discovery_->Coordinator("c1")->draining);
  registrar.Stop();
  Deliver();
  EXPECT_EQ(discovery_->Coordinator("c1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiscoveryTest, DestructionStopsTheRetriesAndTheCallbacks) {
  Put(Node("c1"));
  StartDiscovery();
  memory_.SetAvailable(false);
  Deliver();
  AdvanceBy(absl::Seconds(2));
  EXPECT_GT(scheduler_.pending(), 0u);  // a re-read is due
  discovery_.reset();
  EXPECT_EQ(scheduler_.pending(), 0u);
  const int calls = etcd_.calls.load();
  memory_.SetAvailable(true);
  Put(Node("c2"));
  AdvanceBy(absl::Seconds(5));
  EXPECT_EQ(etcd_.calls.load(), calls);
}

TEST(DiscoveryThreadsTest, NoCallbackOnceDestroyedWhileEtcdComesAndGoes) {
  TimerQueue timers;
  MemoryEtcd memory(&timers);
  DiscoveryOptions options;
  options.prefix = "/t";
  options.min_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(2);
  std::atomic<bool> stop{false};
  // Writes and outages on a thread of their own.
  std::thread churn([&] {
    for (int i = 0; !stop; ++i) {
      memory.SetAvailable(i % 7 != 0);
      memory.Put(KeyOf(Node(absl::StrCat("c", i % 5))), Node(absl::StrCat("c", i % 5)).ToJson())
          .IgnoreError();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  int started = 0;
  for (int i = 0; i < 50; ++i) {
    auto destroyed = std::make_shared<std::atomic<bool>>(false);
    auto after = std::make_shared<std::atomic<int>>(0);
    {
      Discovery discovery(&memory, &timers, options);
      discovery.OnChange([destroyed, after] {
        if (destroyed->load()) ++*after;
      });
      if (discovery.Start().ok()) ++started;
      std::this_thread::sleep_for(std::chrono::milliseconds(i % 3));
    }
    destroyed->store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(after->load(), 0);
  }
  stop = true;
  churn.join();
  EXPECT_GT(started, 0);
}

}  // namespace
}  // namespace txcoord::cluster
