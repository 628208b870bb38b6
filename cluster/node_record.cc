#include "cluster/node_record.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/txid.h"
#include "nlohmann/json.hpp"

namespace txcoord::cluster {
namespace {

constexpr char kServing[] = "serving";
constexpr char kDraining[] = "draining";
constexpr int64_t kMaxWeight = 1000;

// Records come from etcd, written by anyone: never echo a value at length.
std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 64)), text.size() > 64 ? "..." : "",
                      "\"");
}

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("node record: \"", field, "\" ", problem));
}

// Reads the string field `name` into `out`; a missing optional field
// leaves `out` as it is.
absl::Status ReadString(const nlohmann::json& json, const char* name, bool required,
                        std::string* out) {
  auto it = json.find(name);
  if (it == json.end()) return required ? Invalid(name, "is missing") : absl::OkStatus();
  if (!it->is_string()) return Invalid(name, "is not a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

std::string NodeRecord::ToJson() const {
  // Field order as docs/cluster.md shows a record.
  nlohmann::ordered_json json;
  json["node_id"] = node_id;
  json["role"] = role;
  json["service"] = service;
  json["endpoint"] = endpoint;
  json["http_endpoint"] = http_endpoint;
  json["weight"] = weight;
  json["version"] = version;
  json["state"] = draining ? kDraining : kServing;
  json["pid"] = pid;
  json["started"] = started;
  // Replace, not throw, on invalid UTF-8: a record is always written.
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

absl::StatusOr<NodeRecord> ParseNodeRecord(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("node record: not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("node record: not a JSON object");

  NodeRecord record;
  std::string state = kServing;
  for (absl::Status status : {
           ReadString(json, "node_id", true, &record.node_id),
           ReadString(json, "role", true, &record.role),
           ReadString(json, "service", true, &record.service),
           ReadString(json, "endpoint", true, &record.endpoint),
           ReadString(json, "http_endpoint", false, &record.http_endpoint),
           ReadString(json, "version", false, &record.version),
           ReadString(json, "state", false, &state),
           ReadString(json, "started", false, &record.started),
       }) {
    if (!status.ok()) return status;
  }

  if (record.role != kCoordinatorRole && record.role != kAgentRole) {
    return Invalid("role", absl::StrCat(Quote(record.role), " is neither \"", kCoordinatorRole,
                                        "\" nor \"", kAgentRole, "\""));
  }
  // A coordinator's node id is the first part of its txids: no dots.
  if (record.role == kCoordinatorRole) {
    if (!IsValidName(record.node_id, /*allow_dot=*/false)) {
      return Invalid("node_id", absl::StrCat(Quote(record.node_id), " is not a cluster id (1 to ",
                                             kMaxNameBytes, " of A-Z a-z 0-9 _ -)"));
    }
  } else if (!IsValidName(record.node_id)) {
    return Invalid("node_id", absl::StrCat(Quote(record.node_id), " is not a name (1 to ",
                                           kMaxNameBytes, " of A-Z a-z 0-9 _ . : -)"));
  }
  if (!IsValidName(record.service)) {
    return Invalid("service", absl::StrCat(Quote(record.service), " is not a name (1 to ",
                                           kMaxNameBytes, " of A-Z a-z 0-9 _ . : -)"));
  }
  if (!IsValidEndpoint(record.endpoint)) {
    return Invalid("endpoint", absl::StrCat(Quote(record.endpoint), " is not HOST:PORT"));
  }
  if (!record.http_endpoint.empty() && !IsValidEndpoint(record.http_endpoint)) {
    return Invalid("http_endpoint",
                   absl::StrCat(Quote(record.http_endpoint), " is neither empty nor HOST:PORT"));
  }
  if (state != kServing && state != kDraining) {
    return Invalid("state", absl::StrCat(Quote(state), " is neither \"", kServing, "\" nor \"",
                                         kDraining, "\""));
  }
  record.draining = state == kDraining;

  if (auto it = json.find("weight"); it != json.end()) {
    if (!it->is_number_integer()) return Invalid("weight", "is not an integer");
    const int64_t weight = it->get<int64_t>();
    if (weight < 1 || weight > kMaxWeight) {
      return Invalid("weight", absl::StrCat(weight, " is not in 1..", kMaxWeight));
    }
    record.weight = weight;
  }
  if (auto it = json.find("pid"); it != json.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return Invalid("pid", "is not a non-negative integer");
    }
    record.pid = it->get<int64_t>();
  }
  return record;
}

std::string NodeKey(const std::string& prefix, const std::string& role, const std::string& service,
                    const std::string& node_id) {
  return absl::StrCat(NodesPrefix(prefix), role, "/", service, "/", node_id);
}

std::string NodesPrefix(const std::string& prefix) { return absl::StrCat(prefix, "/nodes/"); }

}  // namespace txcoord::cluster
