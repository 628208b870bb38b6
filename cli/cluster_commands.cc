#include "cli/cluster_commands.h"

#include <iostream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "cluster/coordinator_directory.h"
#include "cluster/node_record.h"
#include "cluster/registry_connection.h"

namespace txcoord::cli {
namespace {

// The registry's view, read once. Exit code -1 when it could be read.
std::unique_ptr<cluster::RegistryConnection> OpenView(const std::string& command,
                                                      const Invocation& invocation, int* exit) {
  *exit = -1;
  cluster::RegistryOptions options;
  options.url = invocation.line.Get("registry", "");
  options.prefix = invocation.line.Get("registry-prefix", cluster::kDefaultPrefix);
  options.call_timeout = invocation.timeout;
  absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> connection =
      cluster::RegistryConnection::Open(options);
  if (!connection.ok()) {
    *exit = UsageError(command, absl::StrCat("--registry: ", connection.status().message()));
    return nullptr;
  }
  absl::StatusOr<cluster::Discovery*> view = (*connection)->StartDiscovery();
  if (!view.ok()) {
    *exit = ReportError(invocation, view.status(), "reading the registry");
    return nullptr;
  }
  return *std::move(connection);
}

bool OnOneTxid(const std::string& command) {
  return command == "show" || command == "retry" || command == "abort" || command == "mark-done";
}

}  // namespace

int ResolveFromRegistry(const std::string& command, Invocation* invocation,
                        std::vector<std::pair<std::string, std::string>>* coordinators) {
  const CommandLine& line = invocation->line;
  if (line.Get("registry", "").empty()) {
    for (const char* flag : {"service", "coordinator-id", "coordinator-service"}) {
      if (line.Has(flag)) {
        return UsageError(command,
                          absl::StrCat("--", flag, " needs --registry=etcd://HOST:PORT[,...]"));
      }
    }
    return -1;
  }
  int exit = -1;
  std::unique_ptr<cluster::RegistryConnection> connection = OpenView(command, *invocation, &exit);
  if (connection == nullptr) return exit;
  cluster::Discovery* view = connection->discovery();
  if (line.Has("service") && !line.Has("agent")) {
    absl::StatusOr<std::vector<cluster::NodeRecord>> agents = view->Agents(line.Get("service", ""));
    if (!agents.ok()) return ReportError(*invocation, agents.status(), "finding the agent");
    invocation->agent = agents->front().endpoint;
  }
  if (line.Has("coordinator")) return -1;
  if (line.Has("coordinator-id")) {
    absl::StatusOr<cluster::NodeRecord> found = view->Coordinator(line.Get("coordinator-id", ""));
    if (!found.ok()) return ReportError(*invocation, found.status(), "finding the coordinator");
    invocation->coordinator = found->endpoint;
    return -1;
  }
  const std::string service = line.Get("coordinator-service", cluster::kDefaultCoordinatorService);
  if (OnOneTxid(command) && !invocation->args.empty()) {
    cluster::RegistryCoordinatorDirectory directory(view, service,
                                                    cluster::BalancePolicy::kRoundRobin);
    absl::StatusOr<cluster::CoordinatorChoice> owner = directory.Owner(invocation->args[0]);
    if (!owner.ok()) return ReportError(*invocation, owner.status(), "finding the txid's owner");
    invocation->coordinator = owner->endpoint;
  } else if (command == "list") {
    absl::StatusOr<std::vector<cluster::NodeRecord>> all = view->Coordinators(service);
    if (!all.ok()) return ReportError(*invocation, all.status(), "finding the coordinators");
    for (const cluster::NodeRecord& node : *all) {
      coordinators->emplace_back(node.node_id, node.endpoint);
    }
    invocation->coordinator = all->front().endpoint;
  }
  return -1;
}

int RunNodes(const Invocation& invocation) {
  if (invocation.line.Get("registry", "").empty()) {
    return UsageError("nodes", "--registry=etcd://HOST:PORT[,HOST:PORT...] is required");
  }
  int exit = -1;
  std::unique_ptr<cluster::RegistryConnection> connection = OpenView("nodes", invocation, &exit);
  if (connection == nullptr) return exit;
  const std::vector<cluster::NodeRecord> nodes = connection->discovery()->All();
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject().Key("nodes").BeginArray();
    for (const cluster::NodeRecord& node : nodes) {
      json.BeginObject();
      json.Key("role").String(node.role);
      json.Key("service").String(node.service);
      json.Key("node_id").String(node.node_id);
      json.Key("endpoint").String(node.endpoint);
      json.Key("http_endpoint").String(node.http_endpoint);
      json.Key("weight").Int(node.weight);
      json.Key("state").String(node.draining ? "draining" : "serving");
      json.Key("version").String(node.version);
      json.Key("pid").Int(node.pid);
      json.Key("started").String(node.started);
      json.EndObject();
    }
    json.EndArray();
    json.Key("revision").Int(connection->discovery()->revision());
    json.EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  if (nodes.empty()) {
    std::cout << "no daemon registered under " << cluster::NodesPrefix(connection->options().prefix)
              << " in " << connection->etcd()->Describe() << "\n";
    return kExitOk;
  }
  Table table({"ROLE", "SERVICE", "NODE", "ENDPOINT", "HTTP", "WEIGHT", "STATE", "VERSION", "PID"});
  for (const cluster::NodeRecord& node : nodes) {
    table.AddRow({node.role, node.service, node.node_id, node.endpoint,
                  node.http_endpoint.empty() ? "-" : node.http_endpoint, absl::StrCat(node.weight),
                  node.draining ? "draining" : "serving", node.version, absl::StrCat(node.pid)});
  }
  std::cout << table.Render();
  return kExitOk;
}

}  // namespace txcoord::cli
