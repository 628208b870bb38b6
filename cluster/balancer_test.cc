#include "cluster/balancer.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

std::vector<NodeRecord> Nodes(const std::vector<std::pair<std::string, int64_t>>& weights) {
  std::vector<NodeRecord> nodes;
  for (const auto& [id, weight] : weights) {
    NodeRecord node;
    node.node_id = id;
    node.weight = weight;
    nodes.push_back(node);
  }
  return nodes;
}

std::map<std::string, int> Count(Balancer& balancer, const std::vector<NodeRecord>& nodes,
                                 int picks) {
  std::map<std::string, int> count;
  for (int i = 0; i < picks; ++i) ++count[nodes[balancer.Pick(nodes)].node_id];
  return count;
}

TEST(BalancerTest, PolicyNamesParse) {
  EXPECT_EQ(*ParseBalancePolicy("weighted"), BalancePolicy::kWeighted);
  EXPECT_EQ(*ParseBalancePolicy("round_robin"), BalancePolicy::kRoundRobin);
  EXPECT_EQ(*ParseBalancePolicy("random"), BalancePolicy::kRandom);
  absl::StatusOr<BalancePolicy> bad = ParseBalancePolicy("fastest");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("round_robin, random or weighted"), std::string::npos);
}

TEST(BalancerTest, WeightedIsExactlyProportional) {
  Balancer balancer(BalancePolicy::kWeighted);
  const std::vector<NodeRecord> nodes = Nodes({{"c1", 1}, {"c2", 2}, {"c3", 3}});
  std::map<std::string, int> count = Count(balancer, nodes, 30000);
  EXPECT_EQ(count["c1"], 5000);
  EXPECT_EQ(count["c2"], 10000);
  EXPECT_EQ(count["c3"], 15000);
}

TEST(BalancerTest, WeightedSpreadsPicksOut) {
  // nginx's smooth weighted round-robin: weights 5, 1, 1 give a a b a c a a.
  Balancer balancer(BalancePolicy::kWeighted);
  const std::vector<NodeRecord> nodes = Nodes({{"a", 5}, {"b", 1}, {"c", 1}});
  std::string sequence;
  for (int i = 0; i < 7; ++i) sequence += nodes[balancer.Pick(nodes)].node_id;
  EXPECT_EQ(sequence, "aabacaa");
}

TEST(BalancerTest, WeightedAdaptsWhenNodesComeAndGo) {
  Balancer balancer(BalancePolicy::kWeighted);
  Count(balancer, Nodes({{"c1", 1}, {"c2", 2}, {"c3", 3}}), 17);
  // c3 leaves: the other two share 1:2 from then on.
  std::map<std::string, int> count = Count(balancer, Nodes({{"c1", 1}, {"c2", 2}}), 3000);
  EXPECT_NEAR(count["c1"], 1000, 1);
  EXPECT_NEAR(count["c2"], 2000, 1);
  // c3 is back with weight 3.
  count = Count(balancer, Nodes({{"c1", 1}, {"c2", 2}, {"c3", 3}}), 6000);
  EXPECT_NEAR(count["c3"], 3000, 2);
}

TEST(BalancerTest, RoundRobinIsExactlyEven) {
  Balancer balancer(BalancePolicy::kRoundRobin);
  std::map<std::string, int> count =
      Count(balancer, Nodes({{"c1", 1}, {"c2", 2}, {"c3", 3}}), 30000);
  EXPECT_EQ(count["c1"], 10000);
  EXPECT_EQ(count["c2"], 10000);
  EXPECT_EQ(count["c3"], 10000);
}

TEST(BalancerTest, RandomIsUniformWithinFiveSigma) {
  Balancer balancer(BalancePolicy::kRandom, /*seed=*/42);
  const int n = 30000;
  std::map<std::string, int> count = Count(balancer, Nodes({{"c1", 1}, {"c2", 2}, {"c3", 3}}), n);
  const double sigma = std::sqrt(n * (1.0 / 3) * (2.0 / 3));
  for (const char* id : {"c1", "c2", "c3"}) EXPECT_NEAR(count[id], n / 3.0, 5 * sigma) << id;
  // Not round-robin in disguise: some run of three equal picks happens.
  std::vector<NodeRecord> nodes = Nodes({{"c1", 1}, {"c2", 1}, {"c3", 1}});
  int longest = 0, run = 0;
  size_t last = 99;
  for (int i = 0; i < 1000; ++i) {
    size_t pick = balancer.Pick(nodes);
    run = pick == last ? run + 1 : 1;
    last = pick;
    longest = std::max(longest, run);
  }
  EXPECT_GE(longest, 3);
}

}  // namespace
}  // namespace txcoord::cluster
