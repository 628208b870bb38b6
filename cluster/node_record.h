// What a daemon registers about itself in etcd (docs/cluster.md, "What
// lives in etcd"), and the keys it lives under.
#ifndef TXCOORD_CLUSTER_NODE_RECORD_H_
#define TXCOORD_CLUSTER_NODE_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace txcoord::cluster {

inline constexpr char kDefaultPrefix[] = "/txcoord";
inline constexpr char kCoordinatorRole[] = "coordinator";
inline constexpr char kAgentRole[] = "agent";
inline constexpr char kDefaultCoordinatorService[] = "txcoord";

struct NodeRecord {
  std::string node_id;        // a coordinator's: its cluster id (the txid's first part)
  std::string role;           // kCoordinatorRole or kAgentRole
  std::string service;        // coordinator group, or the agent's participant name
  std::string endpoint;       // gRPC host:port
  std::string http_endpoint;  // empty: no HTTP port
  int64_t weight = 1;         // 1..1000, for the weighted policy
  std::string version;
  bool draining = false;  // "state": "draining" | "serving"
  int64_t pid = 0;
  std::string started;  // RFC 3339

  std::string ToJson() const;
};

// Parses a record; INVALID_ARGUMENT naming the field that is missing or bad.
absl::StatusOr<NodeRecord> ParseNodeRecord(const std::string& json);

// "<prefix>/nodes/<role>/<service>/<node_id>".
std::string NodeKey(const std::string& prefix, const std::string& role, const std::string& service,
                    const std::string& node_id);
// "<prefix>/nodes/": every node of every role.
std::string NodesPrefix(const std::string& prefix);
// "<prefix>/config/<service>/".
std::string ConfigPrefix(const std::string& prefix, const std::string& service);

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_NODE_RECORD_H_
