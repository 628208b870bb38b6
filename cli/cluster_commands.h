// txctl in cluster mode (docs/cluster.md): with --registry, the daemons a
// command talks to are found in etcd (a txid's owner, an agent by its
// service name), and `txctl nodes` lists what is registered.
#ifndef TXCOORD_CLI_CLUSTER_COMMANDS_H_
#define TXCOORD_CLI_CLUSTER_COMMANDS_H_

#include <string>
#include <vector>

#include "cli/commands.h"

namespace txcoord::cli {

// Fills invocation->coordinator / ->agent from the registry when
// --registry is given: --service=NAME names the agent; --coordinator-id=ID
// a coordinator; a command on one txid goes to its owner; `list` to every
// coordinator of --coordinator-service (their endpoints in *coordinators).
// Explicit --coordinator / --agent win. Returns -1 to go on, or the exit
// code of a usage or registry error (printed).
int ResolveFromRegistry(const std::string& command, Invocation* invocation,
                        std::vector<std::pair<std::string, std::string>>* coordinators);

int RunNodes(const Invocation& invocation);

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_CLUSTER_COMMANDS_H_
