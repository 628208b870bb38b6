#include "cluster/registrar.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cluster/faulty_etcd_test_util.h"
#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "common/metrics.h"
#include "common/timer_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "/t/nodes/coordinator/txcoord/c1";

NodeRecord Record() {
  NodeRecord record;
  record.node_id = "c1";
  record.role = kCoordinatorRole;
  record.service = "txcoord";
  record.endpoint = "127.0.0.1:7070";
  record.version = "0.5.0";
  record.pid = 42;
  return record;
}

RegistrarOptions Options() {
  RegistrarOptions options;
  options.prefix = "/t";
  options.ttl = absl::Seconds(3);  // renewed every second
  options.min_backoff = absl::Milliseconds(100);
  return options;
}

// The value of a metric in `registry`'s text, or -1.
double Metric(const MetricsRegistry& registry, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(registry.Render(), '\n')) {
    if (!absl::StartsWith(line, name + " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(name.size() + 1), &value)) return value;
  }
  return -1;
}

class RegistrarTest : public ::testing::Test {
 protected:
  void MakeRegistrar() {
    registrar_ = std::make_unique<Registrar>(&etcd_, &scheduler_, Record(), Options());
    registrar_->AddMetrics(&metrics_);
  }

  // The record as etcd holds it now (nullopt: no such key).
  std::optional<KeyValue> Stored() {
    absl::StatusOr<RangeResult> read = memory_.Get(kKey);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok() || read->kvs.empty()) return std::nullopt;
    return read->kvs[0];
  }

  void Advance(absl::Duration d) { scheduler_.Advance(d); }
  // Advances in small steps, as time passes for real.
  void AdvanceBy(absl::Duration total, absl::Duration step = absl::Milliseconds(50)) {
    for (absl::Duration t; t < total; t += step) scheduler_.Advance(step);
  }

  FakeScheduler scheduler_;
  MemoryEtcd memory_{&scheduler_};
  testing::FaultyEtcd etcd_{&memory_};
  MetricsRegistry metrics_;
  std::unique_ptr<Registrar> registrar_;
};

TEST_F(RegistrarTest, StartPutsTheRecordUnderALease) {
  MakeRegistrar();
  EXPECT_EQ(registrar_->key(), kKey);
  EXPECT_FALSE(registrar_->registered());
  ASSERT_TRUE(registrar_->Start().ok());
  std::optional<KeyValue> kv = Stored();
  ASSERT_TRUE(kv.has_value());
  EXPECT_NE(kv->lease, 0);
  EXPECT_EQ(kv->lease, registrar_->lease());
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(kv->value);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->endpoint, "127.0.0.1:7070");
  EXPECT_FALSE(record->draining);
  EXPECT_TRUE(registrar_->registered());
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registered"), 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 1);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_keepalive_failures_total"), 0);
  EXPECT_EQ(registrar_->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RegistrarTest, KeepAliveKeepsTheRecordPastManyTtls) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  const KeyValue first = *Stored();
  AdvanceBy(absl::Seconds(60));  // twenty TTLs
  std::optional<KeyValue> kv = Stored();
  ASSERT_TRUE(kv.has_value());
  // The same write under the same lease: never lost and put again.
  EXPECT_EQ(kv->mod_revision, first.mod_revision);
  EXPECT_EQ(kv->lease, first.lease);
  // One renewal per ttl/3, not more.
  EXPECT_GE(etcd_.keepalives.load(), 59);
  EXPECT_LE(etcd_.keepalives.load(), 61);
  EXPECT_TRUE(registrar_->registered());
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 1);
  // One timer of the registrar's and the lease's expiry in MemoryEtcd.
  EXPECT_EQ(scheduler_.pending(), 2u);
}

TEST_F(RegistrarTest, WithoutKeepAliveTheLeaseWouldExpire) {
  // The control for the test above: MemoryEtcd does expire a lease nobody renews.
  absl::StatusOr<int64_t> lease = memory_.GrantLease(absl::Seconds(3));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(memory_.Put(kKey, Record().ToJson(), *lease).ok());
  Advance(absl::Seconds(4));
  EXPECT_FALSE(Stored().has_value());
}

TEST_F(RegistrarTest, OutageLongerThanTheTtlEndsInANewLeaseAndTheRecordBack) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  const int64_t old_lease = registrar_->lease();
  AdvanceBy(absl::Seconds(2));
  memory_.SetAvailable(false);
  AdvanceBy(absl::Seconds(10));  // the lease expires in etcd meanwhile
  EXPECT_FALSE(registrar_->registered());
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registered"), 0);
  EXPECT_GT(Metric(metrics_, "txcoord_registry_keepalive_failures_total"), 3);
  // Retries are backed off: once at its cap of ttl/3 (1 s), jittered into
  // [0.5 s, 1 s], 10 to 20 tries in 10 s.
  const int keepalives = etcd_.keepalives.load();
  AdvanceBy(absl::Seconds(10));
  EXPECT_LE(etcd_.keepalives.load() - keepalives, 21);
  EXPECT_GE(etcd_.keepalives.load() - keepalives, 9);

  memory_.SetAvailable(true);
  EXPECT_FALSE(Stored().has_value());  // etcd deleted it with the lease
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  std::optional<KeyValue> kv = Stored();
  ASSERT_TRUE(kv.has_value());
  EXPECT_NE(kv->lease, old_lease);
  EXPECT_EQ(kv->lease, registrar_->lease());
  EXPECT_TRUE(registrar_->registered());
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registered"), 1);
  // One re-registration after the first.
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 2);
  EXPECT_EQ(memory_.KeepAlive(old_lease).status().code(), absl::StatusCode::kNotFound);
  // And it is kept alive again.
  AdvanceBy(absl::Seconds(30));
  ASSERT_TRUE(Stored().has_value());
  EXPECT_EQ(Stored()->lease, kv->lease);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 2);
}

TEST_F(RegistrarTest, OutageShorterThanTheTtlKeepsTheLease) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  const KeyValue first = *Stored();
  memory_.SetAvailable(false);
  AdvanceBy(absl::Milliseconds(2500));
  EXPECT_TRUE(registrar_->registered());
  memory_.SetAvailable(true);
  AdvanceBy(absl::Seconds(10));
  std::optional<KeyValue> kv = Stored();
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->lease, first.lease);
  EXPECT_EQ(kv->mod_revision, first.mod_revision);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 1);
  EXPECT_GT(Metric(metrics_, "txcoord_registry_keepalive_failures_total"), 0);
}

TEST_F(RegistrarTest, AFailedPutAfterANewLeaseIsRetriedUnderThatLease) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  memory_.SetAvailable(false);
  AdvanceBy(absl::Seconds(5));
  memory_.SetAvailable(true);
  etcd_.fail_put = true;  // the lease is granted again, the record not written
  AdvanceBy(absl::Seconds(2));
  EXPECT_FALSE(Stored().has_value());
  EXPECT_FALSE(registrar_->registered());
  const int64_t lease = registrar_->lease();
  EXPECT_NE(lease, 0);
  etcd_.fail_put = false;
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  ASSERT_TRUE(Stored().has_value());
  EXPECT_EQ(Stored()->lease, lease);
  EXPECT_TRUE(registrar_->registered());
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 2);
}

TEST_F(RegistrarTest, StartFailsNamingTheKeyAndEtcdWhenUnreachable) {
  MakeRegistrar();
  memory_.SetAvailable(false);
  absl::Status status = registrar_->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(kKey));
  EXPECT_THAT(status.message(), HasSubstr("etcd in memory"));
  EXPECT_FALSE(registrar_->registered());
  EXPECT_EQ(scheduler_.pending(), 0u);  // no loop after a failed start
  // Once etcd is back, Start may be called again.
  memory_.SetAvailable(true);
  EXPECT_TRUE(registrar_->Start().ok());
  EXPECT_TRUE(Stored().has_value());
}

TEST_F(RegistrarTest, StartWhosePutFailsLeavesNoLeaseBehind) {
  MakeRegistrar();
  etcd_.fail_put = true;
  absl::Status status = registrar_->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("writing the record"));
  EXPECT_EQ(registrar_->lease(), 0);
  EXPECT_EQ(scheduler_.pending(), 0u);  // the granted lease was revoked: no expiry timer
}

TEST_F(RegistrarTest, StopRemovesTheRecordAtOnceAndIsIdempotent) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  const int64_t lease = registrar_->lease();
  registrar_->Stop();
  EXPECT_FALSE(Stored().has_value());  // no time passed
  EXPECT_FALSE(registrar_->registered());
  EXPECT_EQ(registrar_->lease(), 0);
  EXPECT_EQ(memory_.KeepAlive(lease).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.pending(), 0u);
  registrar_->Stop();
  const int calls = etcd_.calls.load();
  AdvanceBy(absl::Seconds(10));
  EXPECT_EQ(etcd_.calls.load(), calls);
  EXPECT_FALSE(Stored().has_value());
  EXPECT_EQ(registrar_->Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registrar_->SetDraining(true).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RegistrarTest, StopWhileEtcdIsAwayReturnsAndTheLeaseExpires) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  memory_.SetAvailable(false);
  registrar_->Stop();
  memory_.SetAvailable(true);
  EXPECT_TRUE(Stored().has_value());  // the revoke could not reach etcd
  Advance(absl::Seconds(4));
  EXPECT_FALSE(Stored().has_value());
}

TEST_F(RegistrarTest, SetDrainingRewritesTheRecordUnderTheSameLease) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  const KeyValue before = *Stored();
  ASSERT_TRUE(registrar_->SetDraining(true).ok());
  KeyValue after = *Stored();
  EXPECT_TRUE(ParseNodeRecord(after.value)->draining);
  EXPECT_EQ(after.lease, before.lease);
  EXPECT_GT(after.mod_revision, before.mod_revision);
  ASSERT_TRUE(registrar_->SetDraining(false).ok());
  EXPECT_FALSE(ParseNodeRecord(Stored()->value)->draining);
}

TEST_F(RegistrarTest, SetDrainingBeforeStartIsWhatStartWrites) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->SetDraining(true).ok());
  ASSERT_TRUE(registrar_->Start().ok());
  EXPECT_TRUE(ParseNodeRecord(Stored()->value)->draining);
}

TEST_F(RegistrarTest, SetDrainingDuringAnOutageIsWrittenWhenEtcdIsBack) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  memory_.SetAvailable(false);
  absl::Status status = registrar_->SetDraining(true);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(kKey));
  memory_.SetAvailable(true);
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  ASSERT_TRUE(Stored().has_value());
  EXPECT_TRUE(ParseNodeRecord(Stored()->value)->draining);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 1);  // same lease
}

TEST_F(RegistrarTest, SetDrainingAfterTheLeaseWasLostIsInTheNewRecord) {
  MakeRegistrar();
  ASSERT_TRUE(registrar_->Start().ok());
  memory_.SetAvailable(false);
  AdvanceBy(absl::Seconds(5));
  EXPECT_FALSE(registrar_->SetDraining(true).ok());
  memory_.SetAvailable(true);
  AdvanceBy(absl::Seconds(1) + absl::Milliseconds(100));
  ASSERT_TRUE(Stored().has_value());
  EXPECT_TRUE(ParseNodeRecord(Stored()->value)->draining);
  EXPECT_EQ(Metric(metrics_, "txcoord_registry_registrations_total"), 2);
}

TEST(RegistrarThreadsTest, NoEtcdCallOnceStopReturnsWhileTheLoopRunsOnItsOwnThread) {
  TimerQueue timers;
  MemoryEtcd memory(&timers);
  testing::FaultyEtcd etcd(&memory);
  RegistrarOptions options = Options();
  options.ttl = absl::Milliseconds(3);  // a renewal every millisecond
  for (int i = 0; i < 20; ++i) {
    Registrar registrar(&etcd, &timers, Record(), options);
    ASSERT_TRUE(registrar.Start().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(i % 4));
    // Destroyed from this thread while the timer thread may be renewing.
    registrar.Stop();
    const int calls = etcd.calls.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(etcd.calls.load(), calls);
    absl::StatusOr<RangeResult> read = memory.Get(kKey);
    ASSERT_TRUE(read.ok());
    EXPECT_TRUE(read->kvs.empty());
  }
  EXPECT_GT(etcd.keepalives.load(), 0);
}

// A coordinator that owns a txid space registers under the guard of its
// ownership (docs/ha.md): once another owns the space, the record is not
// written again, even when its own lease expired, and the loop says so once.
TEST_F(RegistrarTest, AGuardedRecordIsNeverWrittenOnceItsGuardFails) {
  const std::string owner = "/t/spaces/c1/owner";
  const int64_t fence = *memory_.Put(owner, "this process");
  RegistrarOptions options = Options();
  options.guard = {{owner, TxnCompare::Target::kCreateRevision, fence}};
  int fenced = 0;
  std::string why;
  options.on_fenced = [&](const absl::Status& status) {
    ++fenced;
    why = std::string(status.message());
  };
  registrar_ = std::make_unique<Registrar>(&etcd_, &scheduler_, Record(), options);
  ASSERT_TRUE(registrar_->Start().ok());
  ASSERT_TRUE(Stored().has_value());

  // The space changes hands while this process's lease lapses (paused).
  ASSERT_EQ(*memory_.Delete(owner), 1);
  ASSERT_TRUE(memory_.Put(owner, "a standby").ok());
  memory_.SetAvailable(false);
  AdvanceBy(absl::Seconds(4));
  memory_.SetAvailable(true);
  ASSERT_FALSE(Stored().has_value()) << "the lease expired with its record";
  ASSERT_TRUE(memory_.Put(kKey, "the standby's record").ok());
  AdvanceBy(absl::Seconds(10));

  EXPECT_EQ(Stored()->value, "the standby's record");
  EXPECT_EQ(fenced, 1);
  EXPECT_THAT(why, HasSubstr("guard of /t/nodes/coordinator/txcoord/c1 failed"));
  EXPECT_FALSE(registrar_->registered());
}

}  // namespace
}  // namespace txcoord::cluster
