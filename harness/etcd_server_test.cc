// Tests of EtcdServer, the harness's real etcd: restarts keep ports and data,
// and a three-member cluster serves with one member down.
#include "harness/etcd_server.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "cluster/etcd_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::testing {
namespace {

using cluster::EtcdClient;
using cluster::EtcdClientOptions;
using ::testing::HasSubstr;

std::unique_ptr<EtcdClient> Client(std::vector<std::string> endpoints) {
  EtcdClientOptions options;
  options.endpoints = std::move(endpoints);
  return std::make_unique<EtcdClient>(std::move(options));
}

// A client's channel reconnects with backoff after a restart: ask until it
// answers, within a bound.
absl::StatusOr<cluster::RangeResult> GetWithin(EtcdClient& client, const std::string& key,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<cluster::RangeResult> got = client.Get(key);
    if (got.ok() || absl::Now() > deadline) return got;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

TEST(EtcdServerTest, StopAndStartKeepTheEndpointAndTheData) {
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EtcdServer& server = **etcd;
  EXPECT_THAT(server.endpoint(), HasSubstr("127.0.0.1:"));
  EXPECT_EQ(server.registry_url(), "etcd://" + server.endpoint());
  auto client = Client(server.endpoints());
  ASSERT_TRUE(client->Put("/k", "kept").ok());

  ASSERT_TRUE(server.Stop().ok());
  EXPECT_FALSE(server.Running());
  EXPECT_EQ(client->Get("/k").status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server.Start().ok()) << server.LogTail();
  absl::StatusOr<cluster::RangeResult> got = GetWithin(*client, "/k", absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "kept");

  ASSERT_TRUE(server.Kill().ok());
  EXPECT_FALSE(server.Running());
  ASSERT_TRUE(server.Start().ok()) << server.LogTail();
  got = GetWithin(*client, "/k", absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs.at(0).value, "kept");
}

TEST(EtcdServerTest, ThreeMembersServeWithOneDown) {
  EtcdServerOptions options;
  options.members = 3;
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Create(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  EtcdServer& server = **etcd;
  ASSERT_EQ(server.endpoints().size(), 3u);
  ASSERT_TRUE(Client({server.endpoint(0)})->Put("/k", "v").ok());
  // Every member has it: a linearizable read at each.
  for (int member = 0; member < 3; ++member) {
    absl::StatusOr<cluster::RangeResult> got = Client({server.endpoint(member)})->Get("/k");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->kvs.at(0).value, "v");
  }

  ASSERT_TRUE(server.KillMember(0).ok());
  EXPECT_FALSE(server.Running(0));
  // If member 0 led, the other two elect a leader first.
  auto survivors = Client({server.endpoint(1), server.endpoint(2)});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<int64_t> put = survivors->Put("/k", "w");
  while (!put.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    put = survivors->Put("/k", "w");
  }
  ASSERT_TRUE(put.ok()) << put.status();

  ASSERT_TRUE(server.StartMember(0).ok()) << server.LogTail(0);
  absl::StatusOr<cluster::RangeResult> got =
      GetWithin(*Client({server.endpoint(0)}), "/k", absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs.at(0).value, "w");
}

}  // namespace
}  // namespace txcoord::testing
