#include "cluster/etcd.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseRegistryUrlTest, OneEndpoint) {
  EXPECT_THAT(*ParseRegistryUrl("etcd://127.0.0.1:2379"), ElementsAre("127.0.0.1:2379"));
}

TEST(ParseRegistryUrlTest, SeveralEndpointsKeepTheirOrder) {
  EXPECT_THAT(*ParseRegistryUrl("etcd://etcd-2.internal:2379,10.0.0.1:2379,[::1]:23790"),
              ElementsAre("etcd-2.internal:2379", "10.0.0.1:2379", "[::1]:23790"));
}

// Each bad URL, and a piece of the message that says what is wrong with it.
TEST(ParseRegistryUrlTest, RefusesBadUrlsSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "registry URL is empty"},
      {"127.0.0.1:2379", "does not start with etcd://"},
      {"http://127.0.0.1:2379", "does not start with etcd://"},
      {"etcd://", "names no endpoint"},
      {"etcd://a:1,", "empty endpoint"},
      {"etcd://a:1,,b:2", "empty endpoint"},
      {"etcd://localhost", "\"localhost\" is not HOST:PORT"},
      {"etcd://a:1,b:0", "\"b:0\" is not HOST:PORT"},
      {"etcd://a:65536", "\"a:65536\" is not HOST:PORT"},
      {"etcd://a:1, b:2", "\" b:2\" is not HOST:PORT"},
      {"etcd://a:2379/", "\"a:2379/\" is not HOST:PORT"},
      {"etcd://user@a:2379", "\"user@a:2379\" is not HOST:PORT"},
      {"etcd://a:1,a:1", "names a:1 twice"},
  };
  for (const auto& [url, why] : cases) {
    absl::StatusOr<std::vector<std::string>> parsed = ParseRegistryUrl(url);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(parsed.status().message(), HasSubstr(why)) << url;
  }
}

}  // namespace
}  // namespace txcoord::cluster
