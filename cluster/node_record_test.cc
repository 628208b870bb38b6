#include "cluster/node_record.h"

#include "gtest/gtest.h"

namespace txcoord::cluster {
namespace {

NodeRecord Coordinator() {
  NodeRecord record;
  record.node_id = "c1";
  record.role = kCoordinatorRole;
  record.service = "txcoord";
  record.endpoint = "127.0.0.1:7070";
  record.weight = 3;
  record.version = "0.1.0";
  record.pid = 42;
  record.started = "2026-12-05T00:00:00Z";
  return record;
}

TEST(NodeRecordTest, RoundTripsThroughJson) {
  NodeRecord record = Coordinator();
  record.draining = true;
  absl::StatusOr<NodeRecord> parsed = ParseNodeRecord(record.ToJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->node_id, "c1");
  EXPECT_EQ(parsed->endpoint, "127.0.0.1:7070");
  EXPECT_EQ(parsed->weight, 3);
  EXPECT_TRUE(parsed->draining);
  EXPECT_EQ(parsed->pid, 42);
  EXPECT_NE(record.ToJson().find("\"state\":\"draining\""), std::string::npos);
}

TEST(NodeRecordTest, BadRecordsNameTheField) {
  auto error = [](const std::string& json) {
    absl::StatusOr<NodeRecord> parsed = ParseNodeRecord(json);
    return parsed.ok() ? std::string("ok") : std::string(parsed.status().message());
  };
  EXPECT_NE(error("not json").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"role":"coordinator","service":"s","endpoint":"h:1"})").find("node_id"),
            std::string::npos);
  EXPECT_NE(error(R"({"node_id":"c.1","role":"coordinator","service":"s","endpoint":"h:1"})")
                .find("cluster id"),
            std::string::npos);
  EXPECT_NE(error(R"({"node_id":"a","role":"boss","service":"s","endpoint":"h:1"})").find("role"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"node_id":"a","role":"agent","service":"s","endpoint":"nohost"})").find("endpoint"),
      std::string::npos);
  EXPECT_NE(error(R"({"node_id":"a","role":"agent","service":"s","endpoint":"h:1","weight":0})")
                .find("weight"),
            std::string::npos);
}

TEST(NodeRecordTest, Keys) {
  EXPECT_EQ(NodeKey("/txcoord", kAgentRole, "orders", "orders"),
            "/txcoord/nodes/agent/orders/orders");
  EXPECT_EQ(NodesPrefix("/x"), "/x/nodes/");
  EXPECT_EQ(ConfigPrefix("/x", "orders"), "/x/config/orders/");
}

}  // namespace
}  // namespace txcoord::cluster
