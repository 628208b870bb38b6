#include "cluster/node_record.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "common/txid.h"
#include "nlohmann/json.hpp"

namespace txcoord::cluster {

std::string NodeRecord::ToJson() const {
  nlohmann::json json = {
      {"node_id", node_id},
      {"role", role},
      {"service", service},
      {"endpoint", endpoint},
      {"http_endpoint", http_endpoint},
      {"weight", weight},
      {"version", version},
      {"state", draining ? "draining" : "serving"},
      {"pid", pid},
      {"started", started},
  };
  return json.dump();
}

absl::StatusOr<NodeRecord> ParseNodeRecord(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("node record is not a JSON object");
  }
  auto string_field = [&json](const char* name, bool required, std::string* out) -> absl::Status {
    auto it = json.find(name);
    if (it == json.end()) {
      return required
                 ? absl::InvalidArgumentError(absl::StrCat("node record has no \"", name, "\""))
                 : absl::OkStatus();
    }
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("node record's \"", name, "\" is not a string"));
    }
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  NodeRecord record;
  std::string state = "serving";
  for (absl::Status status :
       {string_field("node_id", true, &record.node_id), string_field("role", true, &record.role),
        string_field("service", true, &record.service),
        string_field("endpoint", true, &record.endpoint),
        string_field("http_endpoint", false, &record.http_endpoint),
        string_field("version", false, &record.version), string_field("state", false, &state),
        string_field("started", false, &record.started)}) {
    if (!status.ok()) return status;
  }
  if (record.role != kCoordinatorRole && record.role != kAgentRole) {
    return absl::InvalidArgumentError(
        absl::StrCat("node record's role \"", record.role, "\" is neither coordinator nor agent"));
  }
  const bool coordinator = record.role == kCoordinatorRole;
  if (!IsValidName(record.node_id, /*allow_dot=*/!coordinator)) {
    return absl::InvalidArgumentError(absl::StrCat("node record's node_id \"", record.node_id,
                                                   "\" is not a valid ",
                                                   coordinator ? "cluster id" : "name"));
  }
  if (!IsValidName(record.service)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node record's service \"", record.service, "\" is not a valid name"));
  }
  if (!IsValidEndpoint(record.endpoint)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node record's endpoint \"", record.endpoint, "\" is not host:port"));
  }
  if (state != "serving" && state != "draining") {
    return absl::InvalidArgumentError(
        absl::StrCat("node record's state \"", state, "\" is neither serving nor draining"));
  }
  record.draining = state == "draining";
  if (auto it = json.find("weight"); it != json.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000) {
      return absl::InvalidArgumentError("node record's weight is not an integer in 1..1000");
    }
    record.weight = it->get<int64_t>();
  }
  if (auto it = json.find("pid"); it != json.end() && it->is_number_integer()) {
    record.pid = it->get<int64_t>();
  }
  return record;
}

std::string NodeKey(const std::string& prefix, const std::string& role, const std::string& service,
                    const std::string& node_id) {
  return absl::StrCat(NodesPrefix(prefix), role, "/", service, "/", node_id);
}

std::string NodesPrefix(const std::string& prefix) { return absl::StrCat(prefix, "/nodes/"); }

std::string ConfigPrefix(const std::string& prefix, const std::string& service) {
  return absl::StrCat(prefix, "/config/", service, "/");
}

}  // namespace txcoord::cluster
