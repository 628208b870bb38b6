#include "cluster/node_record.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace txcoord::cluster {
namespace {

using ::testing::HasSubstr;

NodeRecord Coordinator() {
  NodeRecord record;
  record.node_id = "c1";
  record.role = kCoordinatorRole;
  record.service = "txcoord";
  record.endpoint = "127.0.0.1:7070";
  record.weight = 3;
  record.version = "0.5.0";
  record.pid = 1234;
  record.started = "2026-12-05T00:00:00Z";
  return record;
}

// The record as JSON with `field` replaced by `value` (removed if null).
std::string With(const std::string& field, const nlohmann::json& value) {
  nlohmann::json json = nlohmann::json::parse(Coordinator().ToJson());
  if (value.is_null()) {
    json.erase(field);
  } else {
    json[field] = value;
  }
  return json.dump();
}

std::string ErrorOf(const std::string& json) {
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(json);
  EXPECT_FALSE(record.ok()) << json;
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(record.status().message());
}

TEST(NodeRecordTest, JsonHasTheDocumentedFieldsInOrder) {
  NodeRecord record = Coordinator();
  record.http_endpoint = "127.0.0.1:8080";
  EXPECT_EQ(record.ToJson(),
            R"({"node_id":"c1","role":"coordinator","service":"txcoord",)"
            R"("endpoint":"127.0.0.1:7070","http_endpoint":"127.0.0.1:8080","weight":3,)"
            R"("version":"0.5.0","state":"serving","pid":1234,"started":"2026-12-05T00:00:00Z"})");
  record.draining = true;
  EXPECT_THAT(record.ToJson(), HasSubstr(R"("state":"draining")"));
}

TEST(NodeRecordTest, RoundTrips) {
  NodeRecord record = Coordinator();
  record.draining = true;
  record.http_endpoint = "[::1]:8080";
  absl::StatusOr<NodeRecord> parsed = ParseNodeRecord(record.ToJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->node_id, "c1");
  EXPECT_EQ(parsed->role, "coordinator");
  EXPECT_EQ(parsed->service, "txcoord");
  EXPECT_EQ(parsed->endpoint, "127.0.0.1:7070");
  EXPECT_EQ(parsed->http_endpoint, "[::1]:8080");
  EXPECT_EQ(parsed->weight, 3);
  EXPECT_EQ(parsed->version, "0.5.0");
  EXPECT_TRUE(parsed->draining);
  EXPECT_EQ(parsed->pid, 1234);
  EXPECT_EQ(parsed->started, "2026-12-05T00:00:00Z");
}

TEST(NodeRecordTest, ParsesTheExampleOfTheDocs) {
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(
      R"({"node_id":"c1","role":"coordinator","service":"txcoord","endpoint":"127.0.0.1:7070",)"
      R"("http_endpoint":"","weight":1,"version":"0.5.0","state":"serving","pid":1234,)"
      R"("started":"2026-12-05T00:00:00Z"})");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_FALSE(record->draining);
  EXPECT_EQ(record->http_endpoint, "");
}

TEST(NodeRecordTest, OptionalFieldsDefaultAndUnknownFieldsAreIgnored) {
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(
      R"({"node_id":"orders","role":"agent","service":"orders","endpoint":"db1:7171",)"
      R"("zone":"eu-1"})");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->weight, 1);
  EXPECT_FALSE(record->draining);
  EXPECT_EQ(record->pid, 0);
}

TEST(NodeRecordTest, AgentNodeIdsMayHaveDotsCoordinatorIdsMayNot) {
  std::string agent = Coordinator().ToJson();
  nlohmann::json json = nlohmann::json::parse(agent);
  json["role"] = "agent";
  json["node_id"] = "orders.eu-1";
  EXPECT_TRUE(ParseNodeRecord(json.dump()).ok());
  EXPECT_THAT(ErrorOf(With("node_id", "c1.x")),
              HasSubstr(R"("node_id" "c1.x" is not a cluster id)"));
}

TEST(NodeRecordTest, EachBadFieldIsNamed) {
  EXPECT_THAT(ErrorOf("not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ErrorOf("[1,2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(ErrorOf(With("node_id", nullptr)), HasSubstr(R"("node_id" is missing)"));
  EXPECT_THAT(ErrorOf(With("node_id", "")), HasSubstr(R"("node_id")"));
  EXPECT_THAT(ErrorOf(With("node_id", 7)), HasSubstr(R"("node_id" is not a string)"));
  EXPECT_THAT(ErrorOf(With("role", "observer")), HasSubstr(R"("role" "observer" is neither)"));
  EXPECT_THAT(ErrorOf(With("service", nullptr)), HasSubstr(R"("service" is missing)"));
  EXPECT_THAT(ErrorOf(With("service", "a/b")), HasSubstr(R"("service" "a/b" is not a name)"));
  EXPECT_THAT(ErrorOf(With("endpoint", "localhost")),
              HasSubstr(R"("endpoint" "localhost" is not HOST:PORT)"));
  EXPECT_THAT(ErrorOf(With("endpoint", "h:70000")), HasSubstr(R"("endpoint")"));
  EXPECT_THAT(ErrorOf(With("http_endpoint", "nope")), HasSubstr(R"("http_endpoint")"));
  EXPECT_THAT(ErrorOf(With("weight", 0)), HasSubstr(R"("weight" 0 is not in 1..1000)"));
  EXPECT_THAT(ErrorOf(With("weight", 1001)), HasSubstr(R"("weight" 1001 is not in 1..1000)"));
  EXPECT_THAT(ErrorOf(With("weight", "2")), HasSubstr(R"("weight" is not an integer)"));
  EXPECT_THAT(ErrorOf(With("weight", 1.5)), HasSubstr(R"("weight" is not an integer)"));
  EXPECT_THAT(ErrorOf(With("state", "sleeping")), HasSubstr(R"("state" "sleeping" is neither)"));
  EXPECT_THAT(ErrorOf(With("pid", -1)), HasSubstr(R"("pid")"));
}

TEST(NodeRecordTest, LongBadValuesAreCutShortInErrors) {
  const std::string message = ErrorOf(With("service", std::string(10000, '/')));
  EXPECT_LT(message.size(), 200u);
}

TEST(NodeRecordTest, Keys) {
  EXPECT_EQ(NodeKey("/txcoord", kCoordinatorRole, "txcoord", "c1"),
            "/txcoord/nodes/coordinator/txcoord/c1");
  EXPECT_EQ(NodeKey("/t", kAgentRole, "orders", "orders"), "/t/nodes/agent/orders/orders");
  EXPECT_EQ(NodesPrefix("/txcoord"), "/txcoord/nodes/");
}

}  // namespace
}  // namespace txcoord::cluster
