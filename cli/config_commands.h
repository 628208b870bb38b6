// txctl config: the config centre's settings in etcd (docs/cluster.md,
// "Config centre"): list, get, set (validated first), unset, and the
// history of one setting. Written against any Etcd, so that tests run them
// on MemoryEtcd; RunConfig* (commands.h) connect to --registry first.
#ifndef TXCOORD_CLI_CONFIG_COMMANDS_H_
#define TXCOORD_CLI_CONFIG_COMMANDS_H_

#include <string>

#include "cli/commands.h"
#include "cluster/etcd.h"

namespace txcoord::cli {

// --registry-prefix, or the default "/txcoord".
std::string RegistryPrefix(const Invocation& invocation);

// Each prints its result to stdout (a table, or JSON with --json), its
// errors as ReportError does, and returns the exit code. `etcd` is used
// for the call only.
int ConfigList(const Invocation& invocation, cluster::Etcd* etcd);     // [SERVICE]
int ConfigGet(const Invocation& invocation, cluster::Etcd* etcd);      // SERVICE NAME
int ConfigSet(const Invocation& invocation, cluster::Etcd* etcd);      // SERVICE NAME VALUE
int ConfigUnset(const Invocation& invocation, cluster::Etcd* etcd);    // SERVICE NAME
int ConfigHistory(const Invocation& invocation, cluster::Etcd* etcd);  // SERVICE NAME

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_CONFIG_COMMANDS_H_
