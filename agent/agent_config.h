// The agent's side of the config centre (docs/cluster.md): a setting from
// etcd, already validated against the schema (cluster/settings.h), applied
// to the running participant or outbox relay.
#ifndef TXCOORD_AGENT_AGENT_CONFIG_H_
#define TXCOORD_AGENT_AGENT_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "agent/outbox_relay.h"
#include "cluster/settings.h"
#include "participant/participant.h"

namespace txcoord::participant {

// Applies agent setting `name` (lock_timeout, max_statement_time,
// branch_idle_timeout, outbox_*) at once. INVALID_ARGUMENT, nothing
// changed, for a name that is not an agent setting or a value the
// participant refuses. Calls must not overlap (the config watcher makes one
// at a time): each reads, changes and writes back one policy.
absl::Status ApplyAgentSetting(Participant* participant, OutboxRelay* relay,
                               const std::string& name, const cluster::SettingValue& value);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_AGENT_CONFIG_H_
