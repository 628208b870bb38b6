// EtcdClient against a real etcd (harness/etcd_server.h): KV, leases and
// watches as cluster/etcd.h promises them, compaction, outages and
// failover between endpoints.
#include "cluster/etcd_client.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cluster/etcd_txn_test_util.h"
#include "gmock/gmock.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"
#include "harness/etcd_server.h"
#include "harness/free_port.h"

namespace txcoord::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::txcoord::testing::EtcdServer;

constexpr absl::Duration kWait = absl::Seconds(10);  // bound on anything awaited

EtcdClientOptions Options(std::vector<std::string> endpoints) {
  EtcdClientOptions options;
  options.endpoints = std::move(endpoints);
  return options;
}

// "127.0.0.1:PORT" where nothing listens: connections are refused at once.
std::string DeadEndpoint() {
  absl::StatusOr<int> port = ::txcoord::testing::PickFreeLoopbackPort();
  return "127.0.0.1:" + std::to_string(port.value());
}

// What a watch delivered, for a test to wait on.
class WatchRecorder {
 public:
  Etcd::EventsFn OnEvents() {
    return [this](const std::vector<WatchEvent>& events, int64_t revision) {
      absl::MutexLock lock(&mu_);
      events_.insert(events_.end(), events.begin(), events.end());
      revisions_.push_back(revision);
    };
  }
  Etcd::ErrorFn OnError() {
    return [this](const absl::Status& status) {
      absl::MutexLock lock(&mu_);
      errors_.push_back(status);
    };
  }

  // The events so far once there are at least `count` (fewer after kWait).
  std::vector<WatchEvent> AwaitEvents(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= count; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return events_;
  }
  // The first error (UNKNOWN if none came within `wait`).
  absl::Status AwaitError(absl::Duration wait = kWait) {
    absl::MutexLock lock(&mu_);
    auto failed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !errors_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&failed), wait)) {
      return absl::UnknownError(absl::StrCat("no error within ", absl::FormatDuration(wait)));
    }
    return errors_.front();
  }
  std::vector<int64_t> revisions() {
    absl::MutexLock lock(&mu_);
    return revisions_;
  }
  size_t event_count() {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }
  size_t error_count() {
    absl::MutexLock lock(&mu_);
    return errors_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<WatchEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> revisions_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

std::string Describe(const WatchEvent& event) {
  return absl::StrCat(event.type == WatchEvent::Type::kPut ? "put " : "delete ", event.kv.key,
                      event.type == WatchEvent::Type::kPut ? "=" + event.kv.value : "", " @",
                      event.kv.mod_revision);
}

std::vector<std::string> Describe(const std::vector<WatchEvent>& events) {
  std::vector<std::string> result;
  for (const WatchEvent& event : events) result.push_back(Describe(event));
  return result;
}

// One etcd for the tests that leave it running; each test works under keys
// of its own ("/<test name>/...").
class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create();
    if (etcd.ok()) {
      server_ = std::move(*etcd).release();
    } else {
      start_error_ = new absl::Status(etcd.status());
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << *start_error_;
    client_ = std::make_unique<EtcdClient>(Options({server_->endpoint()}));
  }

  std::string Key(const std::string& name) const {
    return absl::StrCat("/", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/",
                        name);
  }

  static EtcdServer* server_;
  static absl::Status* start_error_;
  std::unique_ptr<EtcdClient> client_;
};

EtcdServer* EtcdClientTest::server_ = nullptr;
absl::Status* EtcdClientTest::start_error_ = nullptr;

// etcd 3.4 answers a few conditions with codes that say something else.
TEST(FromEtcdStatusTest, MapsEtcdsMisleadingCodesToWhatTheyMean) {
  EXPECT_EQ(
      FromEtcdStatus(grpc::Status(grpc::StatusCode::UNKNOWN, "context deadline exceeded")).code(),
      absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(FromEtcdStatus(grpc::Status(grpc::StatusCode::UNKNOWN, "raft proposal dropped")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromEtcdStatus(
                grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromEtcdStatus(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                        "etcdserver: mvcc: required revision has been compacted"))
                .code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(FromEtcdStatus(grpc::Status(grpc::StatusCode::UNKNOWN, "something else")).code(),
            absl::StatusCode::kUnknown);
}

TEST_F(EtcdClientTest, PutThenGetReturnsTheValueWithItsRevisions) {
  const absl::StatusOr<int64_t> first = client_->Put(Key("a"), "1");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(*client_->Put(Key("b"), "2"), *first + 1);
  ASSERT_EQ(*client_->Put(Key("a"), "3"), *first + 2);

  absl::StatusOr<RangeResult> got = client_->Get(Key("a"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].key, Key("a"));
  EXPECT_EQ(got->kvs[0].value, "3");
  EXPECT_EQ(got->kvs[0].create_revision, *first);
  EXPECT_EQ(got->kvs[0].mod_revision, *first + 2);
  EXPECT_EQ(got->kvs[0].version, 2);
  EXPECT_EQ(got->kvs[0].lease, 0);
  EXPECT_EQ(got->revision, *first + 2);

  absl::StatusOr<RangeResult> missing = client_->Get(Key("none"));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->kvs.empty());
  EXPECT_EQ(missing->revision, *first + 2);
}

TEST_F(EtcdClientTest, GetPrefixReturnsTheKeysUnderItSortedWithTheStoreRevision) {
  for (const char* name : {"p/b", "p/a/x", "p/a", "p", "p0", "q/a"}) {
    ASSERT_TRUE(client_->Put(Key(name), name).ok());
  }
  // A prefix ending in 0xff: its range end is the byte before incremented.
  const std::string high = Key("z\xff");
  ASSERT_TRUE(client_->Put(high + "\x01", "in").ok());
  ASSERT_TRUE(client_->Put(Key("z\xfe"), "out").ok());
  const absl::StatusOr<int64_t> last = client_->Put(Key("z\xff"), "in");

  absl::StatusOr<RangeResult> got = client_->GetPrefix(Key("p/"));
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> keys;
  for (const KeyValue& kv : got->kvs) keys.push_back(kv.key);
  EXPECT_THAT(keys, ElementsAre(Key("p/a"), Key("p/a/x"), Key("p/b")));
  EXPECT_EQ(got->kvs[0].value, "p/a");
  EXPECT_EQ(got->revision, *last);

  got = client_->GetPrefix(high);
  ASSERT_TRUE(got.ok()) << got.status();
  keys.clear();
  for (const KeyValue& kv : got->kvs) keys.push_back(kv.key);
  EXPECT_THAT(keys, ElementsAre(high, high + "\x01"));

  got = client_->GetPrefix(Key("nothing/"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->kvs.empty());
}

// More than a channel takes in one message (kMaxMessageBytes, 16 MiB):
// read in pages, at one revision.
TEST_F(EtcdClientTest, GetPrefixReadsAPrefixLargerThanOneMessage) {
  const std::string value(24 << 10, 'v');
  int64_t last = 0;
  for (int i = 0; i < 800; ++i) {  // 19.2 MiB
    absl::StatusOr<int64_t> put = client_->Put(Key(absl::StrFormat("big/%04d", i)), value);
    ASSERT_TRUE(put.ok()) << put.status();
    last = *put;
  }
  absl::StatusOr<RangeResult> got = client_->GetPrefix(Key("big/"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 800u);
  for (int i = 0; i < 800; ++i) {
    EXPECT_EQ(got->kvs[i].key, Key(absl::StrFormat("big/%04d", i)));
  }
  EXPECT_EQ(got->kvs[799].value, value);
  EXPECT_EQ(got->revision, last);
}

TEST_F(EtcdClientTest, PutIfWritesOnlyAtTheExpectedModRevision) {
  absl::StatusOr<bool> written = client_->PutIf(Key("k"), "1", 0);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_TRUE(*written);
  EXPECT_FALSE(*client_->PutIf(Key("k"), "2", 0)) << "exists already";
  const int64_t revision = client_->Get(Key("k"))->kvs.at(0).mod_revision;
  EXPECT_FALSE(*client_->PutIf(Key("k"), "3", revision - 1));
  EXPECT_FALSE(*client_->PutIf(Key("k"), "3", revision + 1));
  EXPECT_EQ(client_->Get(Key("k"))->kvs.at(0).value, "1");
  EXPECT_TRUE(*client_->PutIf(Key("k"), "4", revision));
  EXPECT_EQ(client_->Get(Key("k"))->kvs.at(0).value, "4");
}

TEST_F(EtcdClientTest, TxnWritesAllAtOneRevisionOnlyWhenItsComparisonsHold) {
  testing::ExpectTxnSemantics(client_.get(), Key(""));
}

TEST_F(EtcdClientTest, TxnThatPutsAKeyTwiceOrInsideItsOwnDeleteIsRefused) {
  testing::ExpectTxnRefusesDuplicateKeys(client_.get(), Key(""));
}

TEST_F(EtcdClientTest, DeleteReturnsHowManyKeysWent) {
  ASSERT_TRUE(client_->Put(Key("k"), "v").ok());
  ASSERT_TRUE(client_->Put(Key("k2"), "v").ok());
  absl::StatusOr<int64_t> deleted = client_->Delete(Key("k"));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(*client_->Delete(Key("k")), 0);
  EXPECT_TRUE(client_->Get(Key("k"))->kvs.empty());
  EXPECT_EQ(client_->Get(Key("k2"))->kvs.size(), 1u) << "only the key itself, not its prefix";
}

TEST_F(EtcdClientTest, GetAtAnOlderRevisionSeesTheValueOfThen) {
  const int64_t old = *client_->Put(Key("k"), "old");
  ASSERT_TRUE(client_->Put(Key("k"), "new").ok());
  ASSERT_EQ(*client_->Delete(Key("k")), 1);

  absl::StatusOr<RangeResult> then = client_->Get(Key("k"), old);
  ASSERT_TRUE(then.ok()) << then.status();
  ASSERT_EQ(then->kvs.size(), 1u);
  EXPECT_EQ(then->kvs[0].value, "old");
  EXPECT_EQ(then->kvs[0].mod_revision, old);
  EXPECT_TRUE(client_->Get(Key("k"), old - 1)->kvs.empty()) << "before it was created";
  EXPECT_TRUE(client_->Get(Key("k"))->kvs.empty());

  // Unlike the latest (revision 0), a revision etcd has not reached yet is
  // refused.
  absl::StatusOr<RangeResult> future = client_->Get(Key("k"), then->revision + 1000);
  EXPECT_EQ(future.status().code(), absl::StatusCode::kOutOfRange) << future.status();
}

TEST_F(EtcdClientTest, GetOfACompactedRevisionIsOutOfRange) {
  const int64_t old = *client_->Put(Key("k"), "old");
  const int64_t now = *client_->Put(Key("k"), "new");
  ASSERT_TRUE(client_->Compact(now).ok());

  absl::StatusOr<RangeResult> then = client_->Get(Key("k"), old);
  EXPECT_EQ(then.status().code(), absl::StatusCode::kOutOfRange) << then.status();
  EXPECT_THAT(std::string(then.status().message()), HasSubstr("compacted"));
  EXPECT_THAT(std::string(then.status().message()), HasSubstr(server_->endpoint()));
  EXPECT_EQ(client_->Get(Key("k"), now)->kvs.at(0).value, "new");
}

TEST_F(EtcdClientTest, RequestsEtcdRefusesAreInvalidArguments) {
  EXPECT_EQ(client_->Put("", "v").status().code(), absl::StatusCode::kInvalidArgument);
  // etcd answers OUT_OF_RANGE for a TTL over its limit (9e9 s); that is
  // not a compacted revision.
  absl::StatusOr<int64_t> lease = client_->GrantLease(absl::Hours(24 * 365 * 1000));
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kInvalidArgument) << lease.status();
}

TEST_F(EtcdClientTest, KeepAliveRenewsALeaseAndRevokeDeletesItsKeys) {
  absl::StatusOr<int64_t> lease = client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client_->Put(Key("node"), "up", *lease).ok());
  ASSERT_TRUE(client_->Put(Key("other"), "stays").ok());
  EXPECT_EQ(client_->Get(Key("node"))->kvs.at(0).lease, *lease);

  absl::StatusOr<absl::Duration> ttl = client_->KeepAlive(*lease);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, absl::Seconds(10));

  ASSERT_TRUE(client_->RevokeLease(*lease).ok());
  EXPECT_TRUE(client_->Get(Key("node"))->kvs.empty());
  EXPECT_EQ(client_->Get(Key("other"))->kvs.size(), 1u);
  ttl = client_->KeepAlive(*lease);
  EXPECT_EQ(ttl.status().code(), absl::StatusCode::kNotFound) << ttl.status();
  EXPECT_TRUE(client_->RevokeLease(*lease).ok()) << "revoking a gone lease is no error";
  EXPECT_EQ(client_->Put(Key("node"), "up", *lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientTest, ARevokedLeaseDeletesAllItsKeysInOneRevision) {
  const int64_t lease = *client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(client_->Put(Key("n/a"), "1", lease).ok());
  ASSERT_TRUE(client_->Put(Key("n/b"), "2", lease).ok());
  WatchRecorder recorder;
  auto watch = client_->WatchPrefix(Key("n/"), 0, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(client_->RevokeLease(lease).ok());

  std::vector<WatchEvent> events = recorder.AwaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);
  EXPECT_EQ(recorder.revisions(), std::vector<int64_t>{events[0].kv.mod_revision})
      << "both in one call";
}

TEST_F(EtcdClientTest, AnUnrenewedLeaseExpiresAndTakesItsKeyWithIt) {
  absl::StatusOr<int64_t> lease = client_->GrantLease(absl::Seconds(1));
  ASSERT_TRUE(lease.ok()) << lease.status();
  const absl::Time granted = absl::Now();
  const int64_t put = *client_->Put(Key("node"), "up", *lease);
  WatchRecorder recorder;
  auto watch = client_->WatchPrefix(Key("node"), put + 1, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();

  std::vector<WatchEvent> events = recorder.AwaitEvents(1);
  ASSERT_EQ(events.size(), 1u) << "the key was not deleted within " << kWait;
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.key, Key("node"));
  // etcd's shortest TTL is 1.5 election timeouts rounded up to seconds
  // (2 s with its defaults), whatever was asked for.
  EXPECT_GE(absl::Now() - granted, absl::Seconds(1));
  EXPECT_TRUE(client_->Get(Key("node"))->kvs.empty());
  EXPECT_EQ(client_->KeepAlive(*lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientTest, WatchDeliversPutsAndDeletesInRevisionOrder) {
  WatchRecorder recorder;
  auto watch = client_->WatchPrefix(Key("w/"), 0, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  // The watch is in place when WatchPrefix returns: nothing after is missed.
  const int64_t a = *client_->Put(Key("w/a"), "1");
  const int64_t b = *client_->Put(Key("w/b"), "2");
  ASSERT_TRUE(client_->Put(Key("x"), "outside").ok());
  ASSERT_EQ(*client_->Delete(Key("w/a")), 1);
  const int64_t again = *client_->Put(Key("w/a"), "3");

  std::vector<WatchEvent> events = recorder.AwaitEvents(4);
  EXPECT_THAT(Describe(events), ElementsAre(absl::StrCat("put ", Key("w/a"), "=1 @", a),
                                            absl::StrCat("put ", Key("w/b"), "=2 @", b),
                                            absl::StrCat("delete ", Key("w/a"), " @", again - 1),
                                            absl::StrCat("put ", Key("w/a"), "=3 @", again)));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].kv.create_revision, again) << "re-created";
  EXPECT_EQ(events[3].kv.version, 1);
  EXPECT_TRUE(events[2].kv.value.empty());
  const std::vector<int64_t> revisions = recorder.revisions();
  EXPECT_TRUE(std::is_sorted(revisions.begin(), revisions.end()));
  EXPECT_EQ(revisions.back(), again);
  EXPECT_EQ(recorder.error_count(), 0u);
}

TEST_F(EtcdClientTest, WatchFromAStartRevisionReplaysTheHistoryThenFollows) {
  const int64_t first = *client_->Put(Key("w/a"), "1");
  ASSERT_TRUE(client_->Put(Key("w/a"), "2").ok());
  ASSERT_EQ(*client_->Delete(Key("w/a")), 1);

  WatchRecorder recorder;
  auto watch = client_->WatchPrefix(Key("w/"), first, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_EQ(recorder.AwaitEvents(3).size(), 3u);
  const int64_t later = *client_->Put(Key("w/b"), "3");
  EXPECT_THAT(Describe(recorder.AwaitEvents(4)),
              ElementsAre(absl::StrCat("put ", Key("w/a"), "=1 @", first),
                          absl::StrCat("put ", Key("w/a"), "=2 @", first + 1),
                          absl::StrCat("delete ", Key("w/a"), " @", first + 2),
                          absl::StrCat("put ", Key("w/b"), "=3 @", later)));
}

TEST_F(EtcdClientTest, WatchOfACompactedRevisionEndsWithOutOfRange) {
  const int64_t first = *client_->Put(Key("w/a"), "1");
  const int64_t now = *client_->Put(Key("w/a"), "2");
  ASSERT_TRUE(client_->Compact(now).ok());

  WatchRecorder recorder;
  auto watch = client_->WatchPrefix(Key("w/"), first, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  absl::Status error = recorder.AwaitError();
  EXPECT_EQ(error.code(), absl::StatusCode::kOutOfRange) << error;
  EXPECT_THAT(std::string(error.message()), HasSubstr("compacted"));
  EXPECT_EQ(recorder.event_count(), 0u);
}

TEST_F(EtcdClientTest, ADestroyedWatchCallsNothingMore) {
  WatchRecorder stopped;
  auto watch = client_->WatchPrefix(Key("w/"), 0, stopped.OnEvents(), stopped.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  watch->reset();
  // A second watch that sees the put shows that etcd sent it out.
  WatchRecorder witness;
  auto second = client_->WatchPrefix(Key("w/"), 0, witness.OnEvents(), witness.OnError());
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(client_->Put(Key("w/a"), "1").ok());
  ASSERT_EQ(witness.AwaitEvents(1).size(), 1u);
  EXPECT_EQ(stopped.event_count(), 0u);
  EXPECT_EQ(stopped.error_count(), 0u);
}

TEST_F(EtcdClientTest, FailsOverFromADeadEndpointToALiveOne) {
  const std::string dead = DeadEndpoint();
  EtcdClient client(Options({dead, server_->endpoint()}));
  EXPECT_EQ(client.Describe(), "etcd at " + dead + "," + server_->endpoint());
  absl::StatusOr<int64_t> put = client.Put(Key("k"), "v");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(client.Get(Key("k"))->kvs.at(0).value, "v");

  WatchRecorder recorder;
  auto watch = client.WatchPrefix(Key(""), 0, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(client.Put(Key("k"), "w").ok());
  EXPECT_EQ(recorder.AwaitEvents(1).size(), 1u);
  absl::StatusOr<int64_t> lease = client.GrantLease(absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE(client.KeepAlive(*lease).ok());
}

TEST(EtcdClientUnreachableTest, EveryCallFailsUnavailableNamingEachEndpoint) {
  const std::string a = DeadEndpoint();
  const std::string b = DeadEndpoint();
  EtcdClient client(Options({a, b}));
  const std::string expected = "etcd unreachable at " + a + "," + b + ": ";
  std::vector<absl::Status> failures = {
      client.Get("/k").status(),
      client.GetPrefix("/").status(),
      client.Put("/k", "v").status(),
      client.PutIf("/k", "v", 0).status(),
      client.Delete("/k").status(),
      client.GrantLease(absl::Seconds(5)).status(),
      client.KeepAlive(1).status(),
      client.RevokeLease(1),
      client
          .WatchPrefix(
              "/", 0, [](const std::vector<WatchEvent>&, int64_t) {}, [](const absl::Status&) {})
          .status(),
  };
  for (const absl::Status& status : failures) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(std::string(status.message()), StartsWith(expected));
  }
}

// Tests that stop etcd have one of their own.
class EtcdClientOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    server_ = *std::move(etcd);
    client_ = std::make_unique<EtcdClient>(Options({server_->endpoint()}));
  }

  std::unique_ptr<EtcdServer> server_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientOutageTest, WatchEndsWithUnavailableWhenEtcdStops) {
  WatchRecorder recorder;
  auto watch = client_->WatchPrefix("/w/", 0, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(client_->Put("/w/a", "1").ok());
  ASSERT_EQ(recorder.AwaitEvents(1).size(), 1u);

  ASSERT_TRUE(server_->Stop().ok());
  absl::Status error = recorder.AwaitError();
  EXPECT_EQ(error.code(), absl::StatusCode::kUnavailable) << error;
  EXPECT_THAT(std::string(error.message()), HasSubstr(server_->endpoint()));
  watch->reset();
  EXPECT_EQ(recorder.error_count(), 1u);
  EXPECT_EQ(recorder.event_count(), 1u);
}

TEST_F(EtcdClientOutageTest, CallsSucceedAgainOnceEtcdIsBack) {
  ASSERT_TRUE(client_->Put("/k", "v").ok());
  ASSERT_TRUE(server_->Stop().ok());
  absl::StatusOr<RangeResult> down = client_->Get("/k");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_THAT(std::string(down.status().message()),
              StartsWith("etcd unreachable at " + server_->endpoint()));

  ASSERT_TRUE(server_->Start().ok()) << server_->LogTail();
  // The channel reconnects after its backoff (at most 2 s): until then
  // calls fail fast, as callers expect of an outage.
  const absl::Time deadline = absl::Now() + kWait;
  absl::StatusOr<RangeResult> up = client_->Get("/k");
  while (!up.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    up = client_->Get("/k");
  }
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->kvs.at(0).value, "v");
}

// A member cut off from its quorum ends its watches (after a few election
// timeouts) rather than go silent, and calls to it time out.
TEST(EtcdClientQuorumTest, AMemberThatLostItsQuorumEndsItsWatchesAndTimesOut) {
  ::txcoord::testing::EtcdServerOptions options;
  options.members = 3;
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EtcdClientOptions client_options = Options({(*etcd)->endpoint(0)});
  client_options.call_timeout = absl::Milliseconds(500);
  EtcdClient client(std::move(client_options));
  WatchRecorder recorder;
  auto watch = client.WatchPrefix("/w/", 0, recorder.OnEvents(), recorder.OnError());
  ASSERT_TRUE(watch.ok()) << watch.status();

  ASSERT_TRUE((*etcd)->KillMember(1).ok());
  ASSERT_TRUE((*etcd)->KillMember(2).ok());
  // etcd ends the watches of a member that has had no leader for three
  // election timeouts in a row, counted only once it has noticed the loss
  // (after one or two more): about 4 to 6 s with etcd's 1 s default, later
  // when the machine is busy.
  absl::Status error = recorder.AwaitError(/*wait=*/absl::Seconds(30));
  EXPECT_EQ(error.code(), absl::StatusCode::kUnavailable) << error;
  EXPECT_THAT(std::string(error.message()), HasSubstr("no leader"));
  absl::StatusOr<int64_t> put = client.Put("/w/a", "1");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable) << put.status();
  // And a new watch is refused at once.
  auto again = client.WatchPrefix("/w/", 0, recorder.OnEvents(), recorder.OnError());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable) << again.status();
}

}  // namespace
}  // namespace txcoord::cluster
