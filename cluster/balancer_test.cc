#include "cluster/balancer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

using ::testing::HasSubstr;

NodeRecord Node(const std::string& id, int64_t weight = 1) {
  NodeRecord record;
  record.node_id = id;
  record.role = kCoordinatorRole;
  record.service = "txcoord";
  record.endpoint = "127.0.0.1:7070";
  record.weight = weight;
  return record;
}

std::string Picks(Balancer& balancer, const std::vector<NodeRecord>& candidates, int n) {
  std::string picked;
  for (int i = 0; i < n; ++i) picked += candidates[balancer.Pick(candidates)].node_id;
  return picked;
}

std::map<std::string, int> Counts(Balancer& balancer, const std::vector<NodeRecord>& candidates,
                                  int n) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) ++counts[candidates[balancer.Pick(candidates)].node_id];
  return counts;
}

TEST(BalancePolicyTest, ParsesItsNames) {
  for (BalancePolicy policy :
       {BalancePolicy::kRoundRobin, BalancePolicy::kRandom, BalancePolicy::kWeighted}) {
    absl::StatusOr<BalancePolicy> parsed = ParseBalancePolicy(BalancePolicyName(policy));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, policy);
  }
  absl::StatusOr<BalancePolicy> bad = ParseBalancePolicy("least_loaded");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("round_robin, random or weighted"));
}

TEST(BalancerTest, RoundRobinGoesInNodeIdOrder) {
  Balancer balancer(BalancePolicy::kRoundRobin);
  EXPECT_EQ(Picks(balancer, {Node("a"), Node("b"), Node("c")}, 7), "abcabca");
}

TEST(BalancerTest, RoundRobinIsExactlyEvenOverAnyWholeNumberOfRounds) {
  const std::vector<NodeRecord> nodes = {Node("a"), Node("b"), Node("c"), Node("d"), Node("e")};
  Balancer balancer(BalancePolicy::kRoundRobin);
  Picks(balancer, nodes, 3);  // starting mid-round changes nothing
  for (int rounds : {1, 7, 1000}) {
    std::map<std::string, int> counts = Counts(balancer, nodes, 5 * rounds);
    ASSERT_EQ(counts.size(), 5u);
    for (const auto& [id, count] : counts) EXPECT_EQ(count, rounds) << id;
  }
}

TEST(BalancerTest, RoundRobinFollowsCandidatesThatComeAndGo) {
  Balancer balancer(BalancePolicy::kRoundRobin);
  EXPECT_EQ(Picks(balancer, {Node("a"), Node("b"), Node("c")}, 2), "ab");
  // b leaves: c is next, never a twice.
  EXPECT_EQ(Picks(balancer, {Node("a"), Node("c")}, 3), "cac");
  // b0 joins between a and c: it gets its turn in id order.
  EXPECT_EQ(Picks(balancer, {Node("a"), Node("b0"), Node("c")}, 4), "ab0ca");
  // A single candidate is always the one.
  EXPECT_EQ(Picks(balancer, {Node("z")}, 3), "zzz");
}

TEST(BalancerTest, WeightedIsTheClassicSmoothSequence) {
  Balancer balancer(BalancePolicy::kWeighted);
  // nginx's example: weights 5, 1, 1.
  EXPECT_EQ(Picks(balancer, {Node("a", 5), Node("b", 1), Node("c", 1)}, 14), "aabacaaaabacaa");
}

TEST(BalancerTest, WeightedIsExactlyProportionalAndSpreadOut) {
  const std::vector<NodeRecord> nodes = {Node("a", 1), Node("b", 2), Node("c", 3)};
  Balancer balancer(BalancePolicy::kWeighted);
  const std::string sequence = Picks(balancer, nodes, 30000);
  std::map<char, int> counts;
  for (char c : sequence) ++counts[c];
  EXPECT_EQ(counts['a'], 5000);
  EXPECT_EQ(counts['b'], 10000);
  EXPECT_EQ(counts['c'], 15000);
  // Every window of sum(weights) = 6 picks has each node weight times.
  for (size_t start = 0; start + 6 <= sequence.size(); start += 1) {
    const std::string window = sequence.substr(start, 6);
    ASSERT_EQ(std::count(window.begin(), window.end(), 'a'), 1) << start << " " << window;
    ASSERT_EQ(std::count(window.begin(), window.end(), 'b'), 2) << start << " " << window;
    ASSERT_EQ(std::count(window.begin(), window.end(), 'c'), 3) << start << " " << window;
  }
  // Spread out: never three picks of one node in a row.
  for (char c : {'a', 'b', 'c'}) EXPECT_EQ(sequence.find(std::string(3, c)), std::string::npos);
}

TEST(BalancerTest, WeightedKeepsStateByNodeIdAcrossCandidateChanges) {
  Balancer balancer(BalancePolicy::kWeighted);
  const std::vector<NodeRecord> abc = {Node("a", 5), Node("b", 1), Node("c", 1)};
  EXPECT_EQ(Picks(balancer, abc, 3), "aab");
  // d joins mid-cycle, in a list built anew: every node is
  // found again by its id, and the proportions are exact from there on.
  const std::vector<NodeRecord> with_d = {Node("a", 5), Node("b", 1), Node("c", 1), Node("d", 7)};
  std::map<std::string, int> counts = Counts(balancer, with_d, 14 * 100);
  EXPECT_EQ(counts["a"], 500);
  EXPECT_EQ(counts["b"], 100);
  EXPECT_EQ(counts["c"], 100);
  EXPECT_EQ(counts["d"], 700);
  counts = Counts(balancer, with_d, 5);  // d leaves mid-cycle
  counts = Counts(balancer, abc, 7 * 100);
  EXPECT_EQ(counts.count("d"), 0u);
  EXPECT_NEAR(counts["a"], 500, 2);
  EXPECT_NEAR(counts["b"], 100, 2);
  EXPECT_NEAR(counts["c"], 100, 2);
  // d comes back and gets its share at once, spread out.
  const std::string back = Picks(balancer, with_d, 14);
  EXPECT_EQ(std::count(back.begin(), back.end(), 'd'), 7) << back;
  EXPECT_EQ(back.find("ddd"), std::string::npos) << back;
}

TEST(BalancerTest, RandomIsUniformWithinFiveSigma) {
  const std::vector<NodeRecord> nodes = {Node("a"), Node("b"), Node("c"), Node("d")};
  Balancer balancer(BalancePolicy::kRandom, /*seed=*/42);
  const int n = 40000;
  std::map<std::string, int> counts = Counts(balancer, nodes, n);
  ASSERT_EQ(counts.size(), 4u);
  // Binomial(n, 1/4): sigma = sqrt(n * 1/4 * 3/4).
  const double sigma = std::sqrt(n * 0.25 * 0.75);
  double chi_square = 0;
  for (const auto& [id, count] : counts) {
    EXPECT_NEAR(count, n / 4.0, 5 * sigma) << id;
    chi_square += (count - n / 4.0) * (count - n / 4.0) / (n / 4.0);
  }
  // 3 degrees of freedom: P(chi^2 > 16.27) = 0.001.
  EXPECT_LT(chi_square, 16.27);
}

TEST(BalancerTest, RandomWithOneSeedRepeatsItself) {
  const std::vector<NodeRecord> nodes = {Node("a"), Node("b"), Node("c")};
  Balancer one(BalancePolicy::kRandom, 7);
  Balancer two(BalancePolicy::kRandom, 7);
  EXPECT_EQ(Picks(one, nodes, 50), Picks(two, nodes, 50));
}

TEST(BalancerTest, ConcurrentPicksKeepRoundRobinExact) {
  const std::vector<NodeRecord> nodes = {Node("a"), Node("b"), Node("c"), Node("d")};
  Balancer balancer(BalancePolicy::kRoundRobin);
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { counts[t] = Counts(balancer, nodes, 10000); });
  }
  for (std::thread& thread : threads) thread.join();
  std::map<std::string, int> total;
  for (const auto& per_thread : counts) {
    for (const auto& [id, count] : per_thread) total[id] += count;
  }
  for (const NodeRecord& node : nodes) EXPECT_EQ(total[node.node_id], 10000) << node.node_id;
}

}  // namespace
}  // namespace txcoord::cluster
