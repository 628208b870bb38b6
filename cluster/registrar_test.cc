#include "cluster/registrar.h"

#include <string>

#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

NodeRecord Agent() {
  NodeRecord record;
  record.node_id = "orders";
  record.role = kAgentRole;
  record.service = "orders";
  record.endpoint = "127.0.0.1:7171";
  return record;
}

class RegistrarTest : public ::testing::Test {
 protected:
  RegistrarOptions Options() {
    RegistrarOptions options;
    options.ttl = absl::Seconds(3);
    return options;
  }
  const std::string key_ = "/txcoord/nodes/agent/orders/orders";
  FakeScheduler scheduler_;
  MemoryEtcd etcd_{&scheduler_};
};

TEST_F(RegistrarTest, RegistersUnderALeaseAndKeepsItAlive) {
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  ASSERT_TRUE(registrar.Start().ok());
  absl::StatusOr<RangeResult> read = etcd_.Get(key_);
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_EQ(read->kvs[0].lease, registrar.lease());
  EXPECT_EQ(ParseNodeRecord(read->kvs[0].value)->endpoint, "127.0.0.1:7171");
  // Many TTLs later the record is still there: the loop renews it.
  scheduler_.Advance(absl::Seconds(60));
  EXPECT_EQ(etcd_.Get(key_)->kvs.size(), 1u);
  EXPECT_TRUE(registrar.registered());
}

TEST_F(RegistrarTest, StartFailsClearlyWhenEtcdIsDown) {
  etcd_.SetAvailable(false);
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  absl::Status started = registrar.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(started.message().find(key_), std::string::npos) << started;
}

TEST_F(RegistrarTest, RegistersAgainAfterAnOutageLongerThanTheTtl) {
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  ASSERT_TRUE(registrar.Start().ok());
  const int64_t first_lease = registrar.lease();
  etcd_.SetAvailable(false);
  scheduler_.Advance(absl::Seconds(10));  // the lease expires meanwhile
  etcd_.SetAvailable(true);
  EXPECT_TRUE(etcd_.Get(key_)->kvs.empty()) << "the record should have gone with its lease";
  scheduler_.Advance(absl::Seconds(2));  // at most one backoff (ttl/3)
  absl::StatusOr<RangeResult> read = etcd_.Get(key_);
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_NE(registrar.lease(), first_lease);
  EXPECT_EQ(read->kvs[0].lease, registrar.lease());
}

TEST_F(RegistrarTest, AShortOutageKeepsTheSameLease) {
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  ASSERT_TRUE(registrar.Start().ok());
  const int64_t lease = registrar.lease();
  etcd_.SetAvailable(false);
  scheduler_.Advance(absl::Milliseconds(1500));
  etcd_.SetAvailable(true);
  scheduler_.Advance(absl::Seconds(30));
  EXPECT_EQ(registrar.lease(), lease);
  EXPECT_EQ(etcd_.Get(key_)->kvs.size(), 1u);
}

TEST_F(RegistrarTest, StopRemovesTheRecordAtOnce) {
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  ASSERT_TRUE(registrar.Start().ok());
  registrar.Stop();
  EXPECT_TRUE(etcd_.Get(key_)->kvs.empty());
  EXPECT_FALSE(registrar.registered());
  registrar.Stop();  // idempotent
  scheduler_.Advance(absl::Seconds(10));
  EXPECT_TRUE(etcd_.Get(key_)->kvs.empty()) << "a stopped registrar registered again";
}

TEST_F(RegistrarTest, DrainingIsWrittenToTheRecord) {
  Registrar registrar(&etcd_, &scheduler_, Agent(), Options());
  ASSERT_TRUE(registrar.Start().ok());
  ASSERT_TRUE(registrar.SetDraining(true).ok());
  EXPECT_TRUE(ParseNodeRecord(etcd_.Get(key_)->kvs.at(0).value)->draining);
  EXPECT_EQ(etcd_.Get(key_)->kvs.at(0).lease, registrar.lease());
}

}  // namespace
}  // namespace txcoord::cluster
